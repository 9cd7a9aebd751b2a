import { status, type StatusObject } from '@grpc/grpc-js';
import { isMeshidError, type ErrorCode, type Logger } from '../core/index.ts';

/**
 * The one place an agent failure becomes a gRPC status: the client gets a safe message, the
 * log gets the detail, and an error that is not ours becomes a bare INTERNAL.
 */
const STATUS_OF: Partial<Record<ErrorCode, status>> = {
  ERR_SDS_CREDENTIAL: status.UNAUTHENTICATED,
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_TOKEN_INVALID: status.UNAUTHENTICATED,
  ERR_TOKEN_EXPIRED: status.UNAUTHENTICATED,
  ERR_FORBIDDEN: status.PERMISSION_DENIED,
  ERR_CSR_IDENTITY: status.PERMISSION_DENIED,
  // The names are fixed by the protocol (default, ROOTCA): no state of the agent could make
  // another one exist, so this is the caller's mistake (INVALID_ARGUMENT), not a resource
  // that is missing for now (NOT_FOUND).
  ERR_SDS_UNKNOWN_RESOURCE: status.INVALID_ARGUMENT,
  ERR_INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  ERR_CA_UNAVAILABLE: status.UNAVAILABLE,
  ERR_KUBE_UNAVAILABLE: status.UNAVAILABLE,
  // The agent's own TokenReview was refused (e.g. its RBAC): it cannot tell who is calling.
  ERR_KUBE_REJECTED: status.UNAVAILABLE,
};

export type GrpcStatus = Pick<StatusObject, 'code' | 'details'>;

export function toGrpcStatus(error: unknown, log: Logger): GrpcStatus {
  if (isMeshidError(error)) {
    const code = STATUS_OF[error.code] ?? status.INTERNAL;
    // A refused token's reason (the apiserver's text) is the error's cause: logged, never answered.
    if (code === status.UNAUTHENTICATED && error.cause instanceof Error) log.info({ code: error.code, reason: error.message, detail: error.cause.message }, 'refused an SDS caller');
    // Our messages never hold a token or a key, so the client may read them.
    return { code, details: `${error.code}: ${error.message}` };
  }
  log.error({ err: error }, 'unexpected error in the SDS server');
  return { code: status.INTERNAL, details: 'internal error in the SDS agent' };
}
