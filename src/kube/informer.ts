import { CoreV1Api, ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../core/index.ts';
import { KEY_LABEL } from './secrets.ts';

export interface SecretWatch {
  stop(): Promise<void>;
}

export interface SecretWatchHandlers {
  onUpsert(secret: V1Secret): void;
  onDelete(secret: V1Secret): void;
}

const RESTART_DELAY_MS = 1000;

/**
 * Which Secrets to watch: meshid's own carry a key label; ones people may make by hand
 * (kubectl apply, as Kuma's docs show) are found by name or name prefix.
 */
export type SecretSelector = { key: string } | { name: string } | { namePrefix: string };

/** List-and-watch of some Secrets in one namespace. */
export async function watchSecrets(kc: KubeConfig, namespace: string, selector: SecretSelector, handlers: SecretWatchHandlers, log: Logger): Promise<SecretWatch> {
  const api = kc.makeApiClient(CoreV1Api);
  const labelSelector = 'key' in selector ? `${KEY_LABEL}=${selector.key}` : undefined;
  const fieldSelector = 'name' in selector ? `metadata.name=${selector.name}` : undefined;
  const key = 'key' in selector ? selector.key : 'name' in selector ? selector.name : selector.namePrefix;
  const wanted = (secret: V1Secret): boolean => !('namePrefix' in selector) || (secret.metadata?.name ?? '').startsWith(selector.namePrefix);
  return watchObjects<V1Secret>(
    kc,
    {
      path: `/api/v1/namespaces/${namespace}/secrets`,
      list: () => api.listNamespacedSecret({ namespace, ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) }),
      ...(labelSelector ? { labelSelector } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
      what: `secrets ${namespace}/${key}`,
    },
    { onUpsert: (s) => wanted(s) && handlers.onUpsert(s), onDelete: (s) => wanted(s) && handlers.onDelete(s) },
    log,
  );
}

export interface WatchTarget<T extends KubernetesObject> {
  /** The collection's API path, e.g. /api/v1/namespaces. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** For log lines. */
  what: string;
}

export interface WatchHandlers<T> {
  onUpsert(object: T): void;
  onDelete(object: T): void;
}

/**
 * List-and-watch of any collection. A broken watch (apiserver restart, timeout) restarts
 * after a short delay and re-lists, so every replica converges on what is in Kubernetes.
 */
export async function watchObjects<T extends KubernetesObject>(kc: KubeConfig, target: WatchTarget<T>, handlers: WatchHandlers<T>, log: Logger): Promise<SecretWatch> {
  const informer = new ListWatch<T>(target.path, new Watch(kc), target.list, false, target.labelSelector, target.fieldSelector);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  informer.on('add', (object) => handlers.onUpsert(object));
  informer.on('update', (object) => handlers.onUpsert(object));
  informer.on('delete', (object) => handlers.onDelete(object));
  informer.on('error', (error: unknown) => {
    if (stopped) return;
    log.warn({ err: error, what: target.what }, 'watch broke; restarting');
    timer = setTimeout(() => void informer.start().catch(() => undefined), RESTART_DELAY_MS);
  });
  await informer.start();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await informer.stop();
    },
  };
}
