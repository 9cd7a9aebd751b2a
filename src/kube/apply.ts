import { KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export const FIELD_MANAGER = 'meshid';

/**
 * Server-side apply, as `kubectl apply --server-side` does: idempotent, and it owns only the
 * fields meshid sets, so edits by other managers survive a re-apply.
 */
export async function applyObjects(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const object of objects) {
    await api.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }
}
