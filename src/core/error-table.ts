import type { ErrorCode } from './errors.ts';

/**
 * gRPC status codes by the numbers the gRPC spec fixes (doc/statuscodes.md), so core need
 * not load @grpc/grpc-js for them; grpc-js's `status` enum has the same values.
 */
export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** The `extensions.code` vocabulary the dashboard branches on (Apollo's names). */
export type GraphqlCode = 'BAD_USER_INPUT' | 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NOT_FOUND' | 'UNAVAILABLE' | 'INTERNAL';

/** What one error code means on each wire meshid answers on. */
export interface ErrorMeaning {
  /** The HTTP status; 500 means "a fault of the server", answered without detail. */
  readonly http: number;
  /** problem+json `code` (and the tail of its `type` URL): stable, kebab-case, one per code. */
  readonly problem: string;
  /** problem+json `title`. */
  readonly title: string;
  /** What to do, where the error itself carries no hint (kubectl shows only one message). */
  readonly hint?: string;
  readonly graphql: GraphqlCode;
  /** INTERNAL means "a fault of the server", as a 500 does. */
  readonly grpc: GrpcCode;
  /** The CLI's exit status. */
  readonly exit: number;
}

// Every meshid error exits 1: scripts, the README and the tests rely on "non-zero is 1".
const EXIT = 1;

/**
 * A fault of the server: a generic 500 / INTERNAL, the detail in the log only. Also the row of
 * codes that only the CLI, the playground or the image builder raise: a server that met one
 * while answering a request would be at fault itself.
 */
export const SERVER_FAULT: ErrorMeaning = { http: 500, problem: 'internal', title: 'Internal error', graphql: 'INTERNAL', grpc: GrpcCode.INTERNAL, exit: EXIT };

const LOGIN_AGAIN = 'Run `meshid login` for a new session token.';
const RETRY_SOON = 'Try again in a few seconds.';
const { INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED, UNAVAILABLE, RESOURCE_EXHAUSTED, FAILED_PRECONDITION } = GrpcCode;

/**
 * The one error table: every code's HTTP status, problem+json title, GraphQL code, gRPC status
 * and CLI exit. The mapped type makes a code added to the union without a row a type error.
 */
const ERROR_TABLE: { readonly [C in ErrorCode]: ErrorMeaning } = {
  ERR_INVALID_ARGUMENT: { http: 400, problem: 'invalid-request', title: 'The request is invalid', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_GO_MISSING: SERVER_FAULT,
  ERR_PEER_BUILD_FAILED: SERVER_FAULT,
  ERR_CLUSTER_START_FAILED: SERVER_FAULT,
  ERR_CLUSTER_NOT_READY: SERVER_FAULT,
  ERR_PLAYGROUND_RUNNING: SERVER_FAULT,
  ERR_NODE_UNSUPPORTED: SERVER_FAULT,
  ERR_PLAYGROUND_NOT_FOUND: SERVER_FAULT,
  ERR_KUBECONFIG: SERVER_FAULT,

  ERR_UNAUTHENTICATED: { http: 401, problem: 'unauthenticated', title: 'A session token is required', hint: 'Run `meshid login` and use the kubeconfig context it writes.', graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_LOGIN_FAILED: { http: 401, problem: 'login-failed', title: 'The credential was not accepted', graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_CHALLENGE_INVALID: { http: 401, problem: 'challenge-invalid', title: 'The login challenge is invalid or expired', graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_TOKEN_INVALID: { http: 401, problem: 'token-invalid', title: 'The token is invalid', hint: LOGIN_AGAIN, graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_TOKEN_EXPIRED: { http: 401, problem: 'token-expired', title: 'The token has expired', hint: LOGIN_AGAIN, graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_WRAPPED_TOKEN_INVALID: { http: 401, problem: 'wrapped-token-invalid', title: 'The wrapped token is invalid or expired', graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_WRAPPED_TOKEN_REPLAYED: { http: 401, problem: 'wrapped-token-replayed', title: 'The wrapped token was already used', graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_AUTH_DISABLED: { http: 400, problem: 'auth-disabled', title: 'Authentication is disabled (anonymous mode)', graphql: 'BAD_USER_INPUT', grpc: FAILED_PRECONDITION, exit: EXIT },
  ERR_SESSION_KEY_UNAVAILABLE: { http: 503, problem: 'session-key-unavailable', title: 'The session key is being recreated', hint: RETRY_SOON, graphql: 'UNAVAILABLE', grpc: UNAVAILABLE, exit: EXIT },
  ERR_SESSION_CREDENTIAL_REVOKED: { http: 401, problem: 'session-credential-revoked', title: 'Kubernetes no longer accepts the credential this session came from', hint: 'Run `meshid login` with a credential Kubernetes accepts.', graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },

  ERR_FORBIDDEN: { http: 403, problem: 'forbidden', title: 'Forbidden', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_IMPERSONATION_FORBIDDEN: { http: 403, problem: 'impersonation-forbidden', title: 'Impersonate-* headers are not accepted from clients', hint: 'Drop --as and --as-group: meshid already acts as you; ask for RBAC rights instead.', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_EXTRA_NOT_GRANTED: { http: 403, problem: 'extra-not-granted', title: "meshid's ClusterRole does not let it impersonate this credential's user extras", graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  // A client over its allowance of token reviews gets one again later: "try again", not "refused".
  ERR_RATE_LIMITED: { http: 429, problem: 'too-many-requests', title: 'Too many token reviews from this client', hint: 'Wait for the Retry-After seconds, then try again.', graphql: 'UNAVAILABLE', grpc: RESOURCE_EXHAUSTED, exit: EXIT },
  ERR_CSRF: { http: 403, problem: 'csrf-token-required', title: 'A matching X-CSRF-Token header is required', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_CROSS_ORIGIN: { http: 403, problem: 'cross-origin-refused', title: 'The browser sent this credential for another origin', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_HTTPS_REQUIRED: { http: 403, problem: 'https-required', title: 'Credentials are accepted only over HTTPS', hint: 'Use the HTTPS port (5682).', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_SHARED_ORIGIN: { http: 403, problem: 'shared-origin-refused', title: 'A browser session is not planted on a host name other programs share', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_PAYLOAD_TOO_LARGE: { http: 413, problem: 'payload-too-large', title: 'The request is too large', graphql: 'BAD_USER_INPUT', grpc: RESOURCE_EXHAUSTED, exit: EXIT },
  ERR_HEADERS_TOO_LARGE: { http: 431, problem: 'headers-too-large', title: 'The request headers are too large', graphql: 'BAD_USER_INPUT', grpc: RESOURCE_EXHAUSTED, exit: EXIT },
  ERR_REQUEST_TIMEOUT: { http: 408, problem: 'request-timeout', title: 'The request was not received in time', graphql: 'BAD_USER_INPUT', grpc: GrpcCode.DEADLINE_EXCEEDED, exit: EXIT },
  ERR_NOT_FOUND: { http: 404, problem: 'not-found', title: 'Not found', graphql: 'NOT_FOUND', grpc: GrpcCode.NOT_FOUND, exit: EXIT },
  ERR_DASHBOARD_NOT_BUILT: { http: 503, problem: 'dashboard-not-built', title: 'The dashboard is not built', graphql: 'UNAVAILABLE', grpc: UNAVAILABLE, exit: EXIT },

  ERR_ISSUER_DISABLED: { http: 400, problem: 'issuer-disabled', title: 'This control plane does not issue user tokens', graphql: 'BAD_USER_INPUT', grpc: FAILED_PRECONDITION, exit: EXIT },
  ERR_TOKEN_NAME_REQUIRED: { http: 400, problem: 'token-name-required', title: 'A user token needs a name', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_VALID_FOR_INVALID: { http: 400, problem: 'token-valid-for-invalid', title: 'validFor must be a positive duration such as 24h', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_VALID_FOR_TOO_LONG: { http: 400, problem: 'token-valid-for-too-long', title: 'validFor is longer than this control plane issues (userTokens.maxValidFor)', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_SIGNING_KEY_MISSING: { http: 503, problem: 'signing-key-missing', title: 'There is no user-token signing key', graphql: 'UNAVAILABLE', grpc: UNAVAILABLE, exit: EXIT },
  ERR_TOKEN_REVOKED: { http: 401, problem: 'token-revoked', title: 'The token was revoked', hint: LOGIN_AGAIN, graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },
  ERR_TOKEN_IDENTITY_RESERVED: { http: 400, problem: 'token-identity-reserved', title: 'Names and groups starting with system: are reserved by Kubernetes', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },

  ERR_CSR_INVALID: { http: 400, problem: 'csr-invalid', title: 'The certificate signing request is invalid', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_CSR_IDENTITY: { http: 403, problem: 'csr-identity', title: 'The request is for an identity its caller does not hold', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_NODE_IMPERSONATION_DENIED: { http: 403, problem: 'node-impersonation-denied', title: 'This node proxy may not act for that workload', graphql: 'FORBIDDEN', grpc: PERMISSION_DENIED, exit: EXIT },
  ERR_CSR_TOO_LARGE: { http: 413, problem: 'csr-too-large', title: 'The certificate signing request is too large', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_TTL_TOO_LONG: { http: 400, problem: 'ttl-too-long', title: 'The certificate lifetime asked for is longer than this CA issues', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  // Broken or expired CA material: a workload asking for a certificate can do nothing about
  // it. The dashboard, which hands CA material in, still shows the message (GraphQL keeps it).
  ERR_CA_KEY_INVALID: SERVER_FAULT,
  ERR_CA_UNAVAILABLE: { http: 503, problem: 'ca-unavailable', title: 'The CA is unavailable', hint: RETRY_SOON, graphql: 'UNAVAILABLE', grpc: UNAVAILABLE, exit: EXIT },
  // The names are fixed by the protocol (default, ROOTCA): no state of the agent could make
  // another one exist, so this is the caller's mistake, not a resource missing for now.
  ERR_SDS_UNKNOWN_RESOURCE: { http: 400, problem: 'sds-unknown-resource', title: 'SDS serves only the resources default and ROOTCA', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_SDS_CREDENTIAL: { http: 401, problem: 'sds-credential', title: "The workload's service-account token was not accepted", graphql: 'UNAUTHENTICATED', grpc: UNAUTHENTICATED, exit: EXIT },

  ERR_CONFIRMATION_REQUIRED: { http: 400, problem: 'confirmation-required', title: 'This change needs an explicit confirmation', graphql: 'BAD_USER_INPUT', grpc: FAILED_PRECONDITION, exit: EXIT },
  ERR_RECOVERY_FAILED: SERVER_FAULT,
  ERR_RECOVERY_UNVERIFIED: SERVER_FAULT,
  ERR_REGISTRY_INVALID: { http: 400, problem: 'registry-invalid', title: 'The registry credential is invalid', graphql: 'BAD_USER_INPUT', grpc: INVALID_ARGUMENT, exit: EXIT },
  ERR_REGISTRY_EXISTS: { http: 409, problem: 'registry-exists', title: 'The registry credential already exists', graphql: 'BAD_USER_INPUT', grpc: GrpcCode.ALREADY_EXISTS, exit: EXIT },

  ERR_IMAGE_BUILD_FAILED: SERVER_FAULT,
  ERR_IMAGE_INTEGRITY: SERVER_FAULT,

  ERR_KUBE_UNAVAILABLE: { http: 503, problem: 'kube-unavailable', title: 'Kubernetes is unavailable', hint: RETRY_SOON, graphql: 'UNAVAILABLE', grpc: UNAVAILABLE, exit: EXIT },
  // meshid's own request was refused (e.g. its RBAC): the caller did nothing wrong, and over
  // gRPC a client's retry may meet a fixed ClusterRole.
  ERR_KUBE_REJECTED: { http: 502, problem: 'kube-rejected', title: 'Kubernetes refused a request meshid needs', graphql: 'INTERNAL', grpc: UNAVAILABLE, exit: EXIT },
};

export function errorMeaning(code: ErrorCode): ErrorMeaning {
  return ERROR_TABLE[code];
}

/** Every code, in the union's order. */
export const ERROR_CODES = Object.keys(ERROR_TABLE) as ErrorCode[];

// Faults of the server all answer `internal`, so only the other codes can be read back.
const BY_PROBLEM = new Map(ERROR_CODES.filter((code) => ERROR_TABLE[code].problem !== SERVER_FAULT.problem).map((code) => [ERROR_TABLE[code].problem, code]));

/**
 * The code a problem+json `code` stands for, as a client rebuilds the server's error; undefined
 * for `internal` and for codes this version does not know.
 */
export function errorCodeOfProblem(problem: unknown): ErrorCode | undefined {
  return typeof problem === 'string' ? BY_PROBLEM.get(problem) : undefined;
}
