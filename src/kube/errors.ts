/** HTTP status of a failed Kubernetes call made through @kubernetes/client-node, if any. */
export function kubeStatus(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') return error.code;
  return undefined;
}

/** The object is not there (404). */
export function isNotFound(error: unknown): boolean {
  return kubeStatus(error) === 404;
}

/**
 * 409: an update lost a race on resourceVersion (reason Conflict), or a create found the
 * name taken (reason AlreadyExists). Every caller treats both the same way, so one test.
 */
export function isConflict(error: unknown): boolean {
  return kubeStatus(error) === 409;
}

/** True when the apiserver could not be reached or answered 5xx/429: worth a 503, not a 500. */
export function isKubeUnavailable(error: unknown): boolean {
  const status = kubeStatus(error);
  if (status !== undefined) return status >= 500 || status === 429;
  // node-fetch names an aborted request so: our own deadline (KUBE_REQUEST_TIMEOUT_MS) ran out.
  if ((error as { name?: unknown } | undefined)?.name === 'AbortError') return true;
  const code = (error as { code?: unknown; cause?: { code?: unknown } } | undefined)?.cause?.code ?? (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'].includes(code);
}
