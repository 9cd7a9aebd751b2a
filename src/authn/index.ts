export type { Identity, Capabilities, Session } from './identity.ts';
export { CAPABILITY_CHECKS, type CapabilityCheck } from './capabilities.ts';
export {
  KubeSessionKeys,
  StaticSessionKeys,
  newSessionKey,
  SESSION_SECRET_NAME,
  type SessionKey,
  type SessionKeySource,
} from './session-keys.ts';
export { SessionTokens, SESSION_TTL_MS, WRAPPED_TTL_MS, type IssuedSession } from './session-tokens.ts';
export { ApiServerReviews, REVIEW_CACHE_TTL_MS, kubeCall, type KubeReviews } from './kube-reviews.ts';
export { ClusterClientCa, verifyCertificateProof, splitPem, type CertificateProof, type ClientCaSource } from './client-certificate.ts';
export { PROOF_CONTEXT, CHALLENGE_TTL_MS } from './challenge.ts';
export { LoginService, type LoginCredential, type LoginResult, type LoginDeps } from './login.ts';
