import { GraphQLError, type ExecutionResult } from 'graphql';
import { errorMeaning, isMeshidError, type Logger } from '../../core/index.ts';
import { ForbiddenError } from '../permissions.ts';

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
    // `extensions.code` is the error table's GraphQL column; the dashboard branches on it.
    const code = errorMeaning(original.code).graphql;
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
