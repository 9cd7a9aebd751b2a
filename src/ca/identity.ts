import { MeshidError } from '../core/index.ts';

/** Istio's default, and what every mesh gets unless its operator names another. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** Who a workload is: the service account its token proves, inside one trust domain. */
export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// The shapes Kubernetes itself enforces (namespace: DNS-1123 label; service account: DNS-1123
// subdomain) and SPIFFE's trust-domain alphabet. Checking them here means no caller can build
// a URI with a '/', '?' or '#' in a path segment, whatever a token or config held.
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, the one name a workload certificate carries. */
export function spiffeId(id: WorkloadIdentity): string {
  if (!TRUST_DOMAIN.test(id.trustDomain)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `trust domain ${JSON.stringify(id.trustDomain)} is not a SPIFFE trust domain`, {
      hint: 'use lowercase letters, digits, ".", "-" and "_", e.g. cluster.local',
    });
  }
  if (!LABEL.test(id.namespace)) throw new MeshidError('ERR_INVALID_ARGUMENT', `${JSON.stringify(id.namespace)} is not a Kubernetes namespace name`);
  if (id.serviceAccount.length > 253 || !SUBDOMAIN.test(id.serviceAccount)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${JSON.stringify(id.serviceAccount)} is not a Kubernetes service account name`);
  }
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

/**
 * The workload identity of a TokenReview'd username. Only service accounts get workload
 * certificates: a user's or node's token proves a person or a machine, not a workload.
 */
export function identityFromUsername(username: string, trustDomain: string): WorkloadIdentity {
  const rest = username.startsWith(SERVICE_ACCOUNT_PREFIX) ? username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':') : [];
  const [namespace, serviceAccount] = rest;
  if (rest.length !== 2 || !namespace || !serviceAccount || !LABEL.test(namespace) || serviceAccount.length > 253 || !SUBDOMAIN.test(serviceAccount)) {
    throw new MeshidError('ERR_UNAUTHENTICATED', `${JSON.stringify(username)} is not a service account; only service accounts get workload certificates`, {
      hint: 'send the pod\'s projected service-account token (username system:serviceaccount:<namespace>:<name>)',
    });
  }
  return { trustDomain, namespace, serviceAccount };
}
