export type { Identity, Capabilities, Session } from './identity.ts';
export {
  KubeSessionKeys,
  StaticSessionKeys,
  newSessionKey,
  deriveKey,
  readableKeys,
  readStoredSessionKeys,
  SESSION_SECRET_NAME,
  SESSION_KEYS_SELECTOR,
  type SessionKey,
  type SessionKeySource,
} from './session-keys.ts';
export { SessionTokens, SESSION_TTL_MS, WRAPPED_TTL_MS, DEFAULT_AUDIENCE, type IssuedSession, type IssueOptions, type SessionTokenOptions } from './session-tokens.ts';
export { ApiServerReviews, REVIEW_CACHE_TTL_MS, kubeCall, type KubeReviews } from './kube-reviews.ts';
export { ClusterClientCa, verifyCertificateProof, certificateNotAfter, type CertificateProof, type ClientCaSource } from './client-certificate.ts';
export { PROOF_CONTEXT, CHALLENGE_TTL_MS, installationAudience, type IssuedChallenge } from './challenge.ts';
export { bearerExpiry, claimedExpiry } from './credential-expiry.ts';
export { KubeUsedOnce, MemoryUsedOnce, usedOnceName, type UsedOnce, type UseKind } from './used-once.ts';
export { TokenReviewRecheck, NO_RECHECK, type CredentialRecheck } from './session-recheck.ts';
export { KubeSessionRevocations, MemorySessionRevocations, SESSION_REVOCATIONS_SECRET, type SessionRevocations } from './session-revocations.ts';
export { LoginService, type LoginCredential, type LoginResult, type LoginDeps } from './login.ts';
