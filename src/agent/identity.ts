import { MeshidError } from '../core/index.ts';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** What a reviewed service-account token proves: the workload's Kubernetes identity. */
export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
}

/**
 * Who the caller's token proves to be. The real one is a cached TokenReview with audience
 * `istio-ca`. It throws MeshidError ERR_SDS_CREDENTIAL or ERR_UNAUTHENTICATED for a token it
 * refuses, and ERR_CA_UNAVAILABLE (or ERR_KUBE_UNAVAILABLE) when it cannot tell.
 */
export interface CallerReviewer {
  review(token: string): Promise<WorkloadIdentity>;
}

// Namespaces are DNS labels and service accounts DNS subdomains: neither can hold "/", so
// the cache key and the SPIFFE path below cannot be confused by a crafted name.
const KUBE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

export function checkTrustDomain(trustDomain: string): string {
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `trustDomain "${trustDomain}" is not a SPIFFE trust domain`, {
      hint: 'Use lowercase letters, digits, ".", "-" and "_", e.g. cluster.local.',
    });
  }
  return trustDomain;
}

/** A reviewer's answer, checked before it becomes a cache key or a certificate name. */
export function checkIdentity(identity: WorkloadIdentity): WorkloadIdentity {
  if (!KUBE_NAME.test(identity.namespace) || !KUBE_NAME.test(identity.serviceAccount)) {
    throw new MeshidError('ERR_SDS_CREDENTIAL', 'the token does not name a valid namespace and service account');
  }
  return { namespace: identity.namespace, serviceAccount: identity.serviceAccount };
}

export function identityKey(identity: WorkloadIdentity): string {
  return `${identity.namespace}/${identity.serviceAccount}`;
}

export function spiffeId(trustDomain: string, identity: WorkloadIdentity): string {
  return `spiffe://${trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
}
