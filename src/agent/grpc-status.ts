import { status, type StatusObject } from '@grpc/grpc-js';
import { GrpcCode, errorMeaning, isMeshidError, type Logger } from '../core/index.ts';

export type GrpcStatus = Pick<StatusObject, 'code' | 'details'>;

/**
 * The one place an agent failure becomes a gRPC status, by the error table's gRPC column: the
 * client gets a safe message, the log gets the detail, and an error that is not ours becomes a
 * bare INTERNAL.
 */
export function toGrpcStatus(error: unknown, log: Logger): GrpcStatus {
  if (isMeshidError(error)) {
    const code = errorMeaning(error.code).grpc;
    // A refused token's reason (the apiserver's text) is the error's cause: logged, never answered.
    if (code === GrpcCode.UNAUTHENTICATED && error.cause instanceof Error) log.info({ code: error.code, reason: error.message, detail: error.cause.message }, 'refused an SDS caller');
    // Our messages never hold a token or a key, so the client may read them.
    return { code, details: `${error.code}: ${error.message}` };
  }
  log.error({ err: error }, 'unexpected error in the SDS server');
  return { code: status.INTERNAL, details: 'internal error in the SDS agent' };
}
