import { MeshidError } from '../core/index.ts';
import { isWorkloadIdentity, type WorkloadIdentity } from '../contract/index.ts';

/** A reviewer's answer, checked before it becomes a cache key or a certificate name. */
export function checkIdentity(identity: WorkloadIdentity): WorkloadIdentity {
  if (!isWorkloadIdentity(identity)) throw new MeshidError('ERR_SDS_CREDENTIAL', 'the token does not name a valid namespace and service account');
  return { namespace: identity.namespace, serviceAccount: identity.serviceAccount };
}

/** Unambiguous because neither name can hold "/" (checkIdentity saw to it). */
export function identityKey(identity: WorkloadIdentity): string {
  return `${identity.namespace}/${identity.serviceAccount}`;
}
