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
  | 'ERR_PLAYGROUND_NOT_FOUND'
  | 'ERR_KUBECONFIG';

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
