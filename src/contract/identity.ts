import { MeshidError } from '../core/index.ts';
import { CLUSTER_DOMAIN } from './names.ts';

/** Istio's default, and what every mesh gets unless its operator names another. */
export const DEFAULT_TRUST_DOMAIN = CLUSTER_DOMAIN;

/** What a reviewed service-account token proves: the workload's Kubernetes identity. */
export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
}

/** A workload identity inside one trust domain: everything a SPIFFE ID says. */
export interface SpiffeIdentity extends WorkloadIdentity {
  trustDomain: string;
}

/**
 * The pod a token is bound to (a TokenRequest with boundObjectRef, as every projected pod
 * token is), from the TokenReview's user extras. The apiserver refuses a bound token once its
 * pod is gone, so a reviewed binding names a pod that exists; `nodeName` is there on
 * Kubernetes 1.32 and later, which bind the pod's node into the token too.
 */
export interface BoundPod {
  name: string;
  uid?: string;
  nodeName?: string;
}

/** A reviewed caller: its workload identity, and the pod its token is bound to, if any. */
export interface ReviewedCaller extends WorkloadIdentity {
  pod?: BoundPod;
}

/**
 * Who the caller's token proves to be, for the CA and the agent alike. The real one is a
 * cached TokenReview with audience `istio-ca`; `client` is the caller's address, for the
 * per-client allowance of TokenReviews. It throws MeshidError ERR_UNAUTHENTICATED (or
 * ERR_SDS_CREDENTIAL) for a token it refuses, and ERR_CA_UNAVAILABLE or
 * ERR_KUBE_UNAVAILABLE when it cannot tell.
 */
export interface CallerReviewer {
  review(token: string, client?: string): Promise<ReviewedCaller>;
}

// The shapes Kubernetes itself enforces: a namespace is a DNS-1123 label, a service account a
// DNS-1123 subdomain. Neither can hold '/', '?' or '#', so a SPIFFE path or a cache key built
// from them cannot be confused by a crafted name, whatever a token or config held.
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// SPIFFE's trust-domain alphabet (lowercase letters, digits, '.', '-', '_'): the spec, not a
// DNS name, is what a peer checks, and Istio accepts '_' too.
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

export function isNamespaceName(name: string): boolean {
  return LABEL.test(name);
}

export function isServiceAccountName(name: string): boolean {
  return name.length <= 253 && SUBDOMAIN.test(name);
}

export function isWorkloadIdentity(identity: WorkloadIdentity): boolean {
  return isNamespaceName(identity.namespace) && isServiceAccountName(identity.serviceAccount);
}

export function isTrustDomain(trustDomain: string): boolean {
  return TRUST_DOMAIN.test(trustDomain);
}

export const TRUST_DOMAIN_HINT = 'Use lowercase letters, digits, ".", "-" and "_", e.g. cluster.local.';

/** The trust domain, or MeshidError ERR_INVALID_ARGUMENT naming what is wrong with it. */
export function checkTrustDomain(trustDomain: string): string {
  if (!isTrustDomain(trustDomain)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `trustDomain ${JSON.stringify(trustDomain)} is not a SPIFFE trust domain`, { hint: TRUST_DOMAIN_HINT });
  }
  return trustDomain;
}

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, the one name a workload certificate carries. */
export function spiffeId(id: SpiffeIdentity): string {
  checkTrustDomain(id.trustDomain);
  if (!isNamespaceName(id.namespace)) throw new MeshidError('ERR_INVALID_ARGUMENT', `${JSON.stringify(id.namespace)} is not a Kubernetes namespace name`);
  if (!isServiceAccountName(id.serviceAccount)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${JSON.stringify(id.serviceAccount)} is not a Kubernetes service account name`);
  }
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

const SPIFFE_ID = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** The identity a workload SPIFFE ID names, or undefined for anything spiffeId would not have made. */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  const [, trustDomain = '', namespace = '', serviceAccount = ''] = SPIFFE_ID.exec(uri) ?? [];
  const id = { trustDomain, namespace, serviceAccount };
  return isTrustDomain(trustDomain) && isWorkloadIdentity(id) ? id : undefined;
}

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

/**
 * The workload identity of a TokenReview'd username. Only service accounts get workload
 * certificates: a user's or node's token proves a person or a machine, not a workload.
 */
export function identityFromUsername(username: string, trustDomain: string): SpiffeIdentity {
  const rest = username.startsWith(SERVICE_ACCOUNT_PREFIX) ? username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':') : [];
  const [namespace = '', serviceAccount = ''] = rest;
  if (rest.length !== 2 || !isWorkloadIdentity({ namespace, serviceAccount })) {
    throw new MeshidError('ERR_UNAUTHENTICATED', `${JSON.stringify(username)} is not a service account; only service accounts get workload certificates`, {
      hint: 'send the pod\'s projected service-account token (username system:serviceaccount:<namespace>:<name>)',
    });
  }
  return { trustDomain, namespace, serviceAccount };
}
