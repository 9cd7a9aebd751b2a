import { MeshidError } from '../core/index.ts';
import { KUBE_REQUEST_TIMEOUT_MS } from '../kube/index.ts';

/**
 * Bounds work that makes several Kubernetes calls in a row (a login asks TokenReview, then
 * SubjectAccessReview): each call has its own timeout, so without this an apiserver that
 * accepts connections but does not answer could hold the client for a multiple of it.
 * The work itself runs on; its late answer is dropped.
 */
export function withinDeadline<T>(work: Promise<T>, ms: number = KUBE_REQUEST_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new MeshidError('ERR_KUBE_UNAVAILABLE', `Kubernetes did not answer within ${ms / 1000} s`)), ms);
  });
  // A rejection after the deadline has no one to tell.
  work.catch(() => undefined);
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
