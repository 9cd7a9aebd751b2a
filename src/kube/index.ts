export { loadKubeConfig, KUBE_REQUEST_TIMEOUT_MS, type KubeTarget } from './config.ts';
export { applyObjects, FIELD_MANAGER } from './apply.ts';
export { kubeStatus, isConflict, isKubeUnavailable, isNotFound } from './errors.ts';
export { SecretClient, decodeSecret, PART_OF_LABEL, KEY_LABEL, type SecretSpec, type SecretStrings } from './secrets.ts';
export { watchSecrets, watchObjects, secretQuery, type SecretWatch, type SecretWatchHandlers, type SecretSelector, type WatchTarget, type WatchHandlers } from './informer.ts';
export { kubeTransport, kubeTlsAgent, type KubeTls, type KubeTransport } from './transport.ts';
export { HOP_BY_HOP, endToEndHeaders, upgradeHeaders, rawHead, endSocket, relayUpgrade } from './proxy.ts';
export { serviceAccountKubeconfig } from './token-request.ts';
export {
  readExtension,
  writeExtension,
  kubeconfigFile,
  MeshidExtensionSchema,
  EXTENSION_NAME,
  type MeshidExtension,
} from './kubeconfig-extension.ts';
export { ServiceAccountTokenReviewer, CA_AUDIENCE, SERVICE_ACCOUNT_REVIEW_TTL_MS, TOKEN_REFUSED_MESSAGE, type ServiceAccountCaller } from './service-account-review.ts';
export { impersonate, impersonationHeaders, changedInTransit, IMPERSONATED_CALL_TIMEOUT_MS, type ImpersonatedUser } from './impersonation.ts';
export { SecurityEvents, listSecurityEvents, ownUsername, EVENT_SOURCE, EVENT_USER_ANNOTATION, type SecurityEvent, type SecurityReason, type RecordedEvent } from './events.ts';
export { audit, type Actor, type AuditTrail } from './audit.ts';
export { IMPERSONATED_EXTRA_KEYS, impersonableExtra } from './extras.ts';
export {
  TokenReviewGuard,
  ReviewRateLimitedError,
  serviceAccountIssuers,
  tokenProblem,
  REFUSAL_CACHE_MS,
  MAX_TOKEN_BYTES,
  LEGACY_SERVICE_ACCOUNT_ISSUER,
  type ReviewRate,
  type ReviewGuardOptions,
  type ReviewOutcome,
  type ReviewVerdict,
} from './review-guard.ts';
