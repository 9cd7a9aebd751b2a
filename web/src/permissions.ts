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

/** The keys the dashboard acts on, in one place so pages and the can-i matrix agree. */
export const CAP = {
  issueUserToken: 'usertokens.meshid.io/create',
  revokeToken: 'revocations.meshid.io/create',
  listRevocations: 'revocations.meshid.io/list',
  listSigningKeys: 'signingkeys.meshid.io/list',
  rotateSigningKey: 'signingkeys.meshid.io/create',
  readCa: 'certificateauthorities.meshid.io/get',
  rotateCa: 'certificateauthorities.meshid.io/update',
  planRecovery: 'recoveries.meshid.io/create',
  listRegistries: 'registries.meshid.io/list',
  addRegistry: 'registries.meshid.io/create',
  removeRegistry: 'registries.meshid.io/delete',
  listEvents: 'events/list',
} as const;
