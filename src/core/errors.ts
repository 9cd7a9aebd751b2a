/**
 * Every failure meshid reports on purpose carries a stable code from this closed union.
 * Callers and tests branch on `code`; the message is for people and may change.
 */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_GO_MISSING'
  | 'ERR_PEER_BUILD_FAILED'
  | 'ERR_CLUSTER_START_FAILED'
  | 'ERR_CLUSTER_NOT_READY'
  | 'ERR_PLAYGROUND_RUNNING'
  | 'ERR_NODE_UNSUPPORTED'
  | 'ERR_PLAYGROUND_NOT_FOUND'
  | 'ERR_KUBECONFIG'
  // Authentication and sessions
  | 'ERR_UNAUTHENTICATED'
  | 'ERR_LOGIN_FAILED'
  | 'ERR_CHALLENGE_INVALID'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_WRAPPED_TOKEN_INVALID'
  | 'ERR_WRAPPED_TOKEN_REPLAYED'
  | 'ERR_AUTH_DISABLED'
  | 'ERR_SESSION_KEY_UNAVAILABLE'
  | 'ERR_SESSION_CREDENTIAL_REVOKED'
  // Authorization and request hygiene
  | 'ERR_FORBIDDEN'
  | 'ERR_IMPERSONATION_FORBIDDEN'
  | 'ERR_EXTRA_NOT_GRANTED'
  | 'ERR_RATE_LIMITED'
  | 'ERR_CSRF'
  | 'ERR_CROSS_ORIGIN'
  | 'ERR_HTTPS_REQUIRED'
  | 'ERR_SHARED_ORIGIN'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_HEADERS_TOO_LARGE'
  | 'ERR_REQUEST_TIMEOUT'
  | 'ERR_NOT_FOUND'
  | 'ERR_DASHBOARD_NOT_BUILT'
  // User tokens
  | 'ERR_ISSUER_DISABLED'
  | 'ERR_TOKEN_NAME_REQUIRED'
  | 'ERR_VALID_FOR_INVALID'
  | 'ERR_VALID_FOR_TOO_LONG'
  | 'ERR_SIGNING_KEY_MISSING'
  | 'ERR_TOKEN_REVOKED'
  | 'ERR_TOKEN_IDENTITY_RESERVED'
  // Workload identity: the CA and the SDS agent
  | 'ERR_CSR_INVALID'
  | 'ERR_CSR_IDENTITY'
  | 'ERR_NODE_IMPERSONATION_DENIED'
  | 'ERR_CSR_TOO_LARGE'
  | 'ERR_TTL_TOO_LONG'
  | 'ERR_CA_KEY_INVALID'
  | 'ERR_CA_UNAVAILABLE'
  | 'ERR_SDS_UNKNOWN_RESOURCE'
  | 'ERR_SDS_CREDENTIAL'
  // Recovery and registry credentials
  | 'ERR_CONFIRMATION_REQUIRED'
  | 'ERR_RECOVERY_FAILED'
  | 'ERR_RECOVERY_UNVERIFIED'
  | 'ERR_REGISTRY_INVALID'
  | 'ERR_REGISTRY_EXISTS'
  // The container image
  | 'ERR_IMAGE_BUILD_FAILED'
  | 'ERR_IMAGE_INTEGRITY'
  // Kubernetes itself
  | 'ERR_KUBE_UNAVAILABLE'
  | 'ERR_KUBE_REJECTED';

export interface MeshidErrorOptions {
  cause?: unknown;
  /** What the user can do about it; the CLI prints it on its own line. */
  hint?: string;
}

export class MeshidError extends Error {
  override readonly name = 'MeshidError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: MeshidErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

export function isMeshidError(value: unknown, code?: ErrorCode): value is MeshidError {
  return value instanceof MeshidError && (code === undefined || value.code === code);
}
