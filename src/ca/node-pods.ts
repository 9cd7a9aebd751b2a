import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { isKubeUnavailable } from '../kube/index.ts';
import type { WorkloadIdentity } from '../contract/index.ts';
import type { NodePods } from './impersonation.ts';

/**
 * Pods as the node authorization sees them, asked from Kubernetes on each impersonated request.
 * Every call is a `list` with a field selector, so the server's RBAC needs `list pods` and
 * nothing more (no get, no watch) and the answer holds at most one pod. Asking each time
 * rather than caching a cluster-wide pod informer (istiod's way) keeps the server's memory
 * independent of the cluster's size; a node proxy asks once per workload and renewal.
 */
export class KubeNodePods implements NodePods {
  readonly #api: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.#api = kc.makeApiClient(CoreV1Api);
  }

  async nodeOf(namespace: string, name: string, uid?: string): Promise<string | undefined> {
    const [pod] = await this.#list(namespace, `metadata.name=${name}`);
    if (!pod || (uid !== undefined && pod.metadata?.uid !== uid)) return undefined;
    return pod.spec?.nodeName || undefined;
  }

  async runsOn(node: string, identity: WorkloadIdentity): Promise<boolean> {
    // A finished pod (Succeeded or Failed) no longer runs there; istiod leaves out Failed ones.
    const selector = `spec.nodeName=${node},spec.serviceAccountName=${identity.serviceAccount},status.phase!=Failed,status.phase!=Succeeded`;
    return (await this.#list(identity.namespace, selector)).length > 0;
  }

  async #list(namespace: string, fieldSelector: string): Promise<V1Pod[]> {
    try {
      return (await this.#api.listNamespacedPod({ namespace, fieldSelector, limit: 1 })).items;
    } catch (error) {
      if (isKubeUnavailable(error)) throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes is unavailable to look up pods on the node proxy\'s node', { cause: error });
      throw new MeshidError('ERR_KUBE_REJECTED', 'Kubernetes refused to list pods for the node authorization (does the server\'s ClusterRole grant list pods?)', { cause: error });
    }
  }
}
