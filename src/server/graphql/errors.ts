import { GraphQLError, type ExecutionResult } from 'graphql';
import { isMeshidError, type ErrorCode, type Logger } from '../../core/index.ts';
import { ForbiddenError } from '../permissions.ts';

/** `extensions.code` for each meshid error a resolver may throw; the dashboard branches on it. */
const GRAPHQL_CODES: Partial<Record<ErrorCode, string>> = {
  ERR_FORBIDDEN: 'FORBIDDEN',
  ERR_UNAUTHENTICATED: 'UNAUTHENTICATED',
  ERR_TOKEN_INVALID: 'UNAUTHENTICATED',
  ERR_TOKEN_EXPIRED: 'UNAUTHENTICATED',
  ERR_TOKEN_REVOKED: 'UNAUTHENTICATED',
  ERR_SESSION_CREDENTIAL_REVOKED: 'UNAUTHENTICATED',
  ERR_KUBE_UNAVAILABLE: 'UNAVAILABLE',
  ERR_SESSION_KEY_UNAVAILABLE: 'UNAVAILABLE',
  ERR_SIGNING_KEY_MISSING: 'UNAVAILABLE',
  ERR_CA_UNAVAILABLE: 'UNAVAILABLE',
  ERR_NOT_FOUND: 'NOT_FOUND',
  ERR_INVALID_ARGUMENT: 'BAD_USER_INPUT',
  ERR_TOKEN_NAME_REQUIRED: 'BAD_USER_INPUT',
  ERR_VALID_FOR_INVALID: 'BAD_USER_INPUT',
  ERR_VALID_FOR_TOO_LONG: 'BAD_USER_INPUT',
  ERR_TOKEN_IDENTITY_RESERVED: 'BAD_USER_INPUT',
  ERR_REGISTRY_INVALID: 'BAD_USER_INPUT',
  ERR_REGISTRY_EXISTS: 'BAD_USER_INPUT',
  ERR_ISSUER_DISABLED: 'BAD_USER_INPUT',
  ERR_AUTH_DISABLED: 'BAD_USER_INPUT',
};

interface Formatted {
  error: GraphQLError;
  unavailable: boolean;
}

/**
 * One error as the client sees it: meshid's own errors keep their message and gain codes
 * (and the missing permission); anything else is "internal error", its detail in the log.
 * Stack traces never leave the server.
 */
function formatOne(error: GraphQLError, log: Logger): Formatted {
  const original = error.originalError;
  const where = { ...(error.path ? { path: error.path } : {}), ...(error.locations ? { locations: error.locations } : {}) };
  if (!original || original instanceof GraphQLError) {
    // Syntax and validation errors (depth, cost, unknown fields) carry no original error.
    return { error: new GraphQLError(error.message, { ...where, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }), unavailable: false };
  }
  if (isMeshidError(original)) {
    const code = GRAPHQL_CODES[original.code] ?? 'INTERNAL';
    const extensions = {
      code,
      meshidCode: original.code,
      ...(original instanceof ForbiddenError ? { permission: original.permission } : {}),
      ...(original.hint ? { hint: original.hint } : {}),
    };
    if (code === 'INTERNAL') log.error({ err: original, path: error.path }, 'dashboard API failure');
    return { error: new GraphQLError(original.message, { ...where, extensions }), unavailable: code === 'UNAVAILABLE' };
  }
  log.error({ err: original, path: error.path }, 'dashboard API failure');
  return { error: new GraphQLError('internal error', { ...where, extensions: { code: 'INTERNAL' } }), unavailable: false };
}

/** Mercurius's errorFormatter: flattens validation errors and sets the HTTP status. */
export function formatErrors(execution: ExecutionResult & { errors: readonly GraphQLError[]; statusCode?: number }, log: Logger): { statusCode: number; response: ExecutionResult; retryAfter: boolean } {
  const flat = execution.errors.flatMap((e) => {
    const nested = (e.originalError as { errors?: unknown } | undefined)?.errors;
    return Array.isArray(nested) ? (nested as GraphQLError[]) : [e];
  });
  const formatted = flat.map((e) => formatOne(e, log));
  const unavailable = formatted.some((f) => f.unavailable);
  const invalid = formatted.some((f) => f.error.extensions['code'] === 'GRAPHQL_VALIDATION_FAILED');
  // No data at all: the request itself was refused (400) or Kubernetes is down (503).
  const statusCode = execution.data ? 200 : invalid ? 400 : unavailable ? 503 : (execution.statusCode ?? 200);
  return { statusCode, retryAfter: statusCode === 503, response: { data: execution.data ?? null, errors: formatted.map((f) => f.error) } };
}
