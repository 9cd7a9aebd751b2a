import { CAPABILITY_KEYS } from '../../src/contract/capabilities.ts';
import type { Capability, Me } from './queries.ts';

/** What a refusal names: the RBAC rule the caller lacks. */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  namespace?: string | null;
}

/** `create usertokens.meshid.io`, `list pods in namespace dev`: the RBAC rule, as kubectl auth can-i reads it. */
export function describePermission(permission: Permission): string {
  const resource = permission.group ? `${permission.resource}.${permission.group}` : permission.resource;
  return `${permission.verb} ${resource}${permission.namespace ? ` in namespace ${permission.namespace}` : ''}`;
}

/**
 * The capability behind a key (`<resource>[.<group>]/<verb>`). Undefined when the server did
 * not check it at login: then the button stays enabled and a refusal is reported after all.
 */
export function capability(me: Me, key: string): Capability | undefined {
  return me.capabilities.find((c) => c.key === key);
}

/** True unless the login-time check said no. */
export function mayDo(me: Me, key: string): boolean {
  return capability(me, key)?.allowed ?? true;
}

/** The permission a forbidden capability lacks, or undefined when it is allowed or unknown. */
export function missingPermission(me: Me, key: string): Permission | undefined {
  const found = capability(me, key);
  return found && !found.allowed ? { verb: found.verb, group: found.group, resource: found.resource } : undefined;
}

/**
 * The keys the dashboard acts on, made from the server's own list (src/contract), so pages,
 * the can-i matrix, the login answer and install's RBAC cannot disagree.
 */
export const CAP = CAPABILITY_KEYS;
