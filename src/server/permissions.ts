import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { isKubeUnavailable, kubeStatus } from '../kube/index.ts';
import type { Identity, KubeReviews } from '../authn/index.ts';
import { CAPABILITIES, capabilityKey, type CapabilityName } from '../contract/index.ts';

/** One RBAC permission, as `kubectl auth can-i` asks it. */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  namespace?: string | undefined;
}

/** "list pods in namespace dev", "update certificateauthorities.meshid.io". */
export function describePermission(p: Permission): string {
  const resource = p.group ? `${p.resource}.${p.group}` : p.resource;
  return `${p.verb} ${resource}${p.namespace ? ` in namespace ${p.namespace}` : ''}`;
}

/** A refusal that names what is missing, so the dashboard can say it before the click. */
export class ForbiddenError extends MeshidError {
  readonly permission: Permission;

  constructor(user: string, permission: Permission) {
    super('ERR_FORBIDDEN', `${user} may not ${describePermission(permission)}`, { hint: `ask for RBAC verb ${permission.verb} on ${describePermission({ ...permission, verb: '' }).trim()}` });
    this.permission = permission;
  }
}

/**
 * Checks one of meshid's own cluster-wide capabilities (answered by SubjectAccessReview at
 * login and cached briefly), for every caller: anonymous mode's caller is system:anonymous,
 * whom RBAC judges like anyone else. A name not in `CAPABILITIES` does not compile.
 */
export async function requireCapability(reviews: KubeReviews, user: Identity, name: CapabilityName): Promise<void> {
  const check = CAPABILITIES[name];
  const caps = await reviews.capabilities(user);
  if (!caps[capabilityKey(check)]) throw new ForbiddenError(user.name, { verb: check.verb, group: check.group, resource: check.resource });
}

/**
 * Runs a Kubernetes call made as the user; their 403 becomes a FORBIDDEN that names
 * `permission`, and an unreachable apiserver a 503-class error instead of an internal one.
 */
export async function asUser<T>(user: Identity, permission: Permission, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (kubeStatus(error) === 403) throw new ForbiddenError(user.name, permission);
    if (isKubeUnavailable(error)) throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes did not answer; try again shortly', { cause: error });
    throw error;
  }
}

/** `kubectl auth can-i`, asked as the user themselves (SelfSubjectAccessReview through impersonation). */
export async function canI(kube: KubeConfig, permission: Permission): Promise<boolean> {
  const review = await kube.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
    body: { spec: { resourceAttributes: { verb: permission.verb, group: permission.group, resource: permission.resource, ...(permission.namespace ? { namespace: permission.namespace } : {}) } } },
  });
  return review.status?.allowed === true;
}
