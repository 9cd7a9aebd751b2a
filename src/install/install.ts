import { KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { silentProgress, type Progress } from '../core/index.ts';
import { applyObjects, isNotFound } from '../kube/index.ts';
import { SHARED_OBJECTS, installManifests, type InstallOptions } from './manifests.ts';

const describe = (o: KubernetesObject): string => `${o.kind ?? '?'} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name ?? '?'}`;

/** Server-side applies every manifest: running it twice changes nothing the second time. */
export async function install(kc: KubeConfig, options: InstallOptions, progress: Progress = silentProgress): Promise<KubernetesObject[]> {
  const objects = installManifests(options);
  progress.start(`Installing meshid into ${options.namespace}`);
  for (const [i, object] of objects.entries()) {
    progress.update(`Installing meshid into ${options.namespace}: [${i + 1}/${objects.length}] ${describe(object)}`);
    await applyObjects(kc, [object]);
  }
  progress.succeed(`Installed meshid into ${options.namespace} (${objects.length} objects${options.anonymousAuth ? ', anonymous mode' : ''})`);
  return objects;
}

export interface UninstallOptions {
  namespace: string;
  /** Also delete the namespace (and with it every key meshid holds) and the shared ClusterRoles. */
  purge: boolean;
}

/** Deletes what install made, newest first; objects already gone are fine. */
export async function uninstall(kc: KubeConfig, options: UninstallOptions, progress: Progress = silentProgress): Promise<number> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const objects = installManifests({ namespace: options.namespace, anonymousAuth: false, image: '', replicas: 0 })
    .filter((o) => options.purge || (o.kind !== 'Namespace' && !SHARED_OBJECTS.has(`${o.kind ?? ''}/${o.metadata?.name ?? ''}`)))
    .reverse();
  let deleted = 0;
  progress.start(`Uninstalling meshid from ${options.namespace}`);
  for (const [i, object] of objects.entries()) {
    progress.update(`Uninstalling meshid: [${i + 1}/${objects.length}] ${describe(object)}`);
    try {
      await api.delete(object);
      deleted += 1;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  progress.succeed(`Uninstalled meshid (${deleted} objects deleted${options.purge ? ', namespace and keys purged' : `; namespace ${options.namespace} and its keys kept, use --purge to delete them`})`);
  return deleted;
}
