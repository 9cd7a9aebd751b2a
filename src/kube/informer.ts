import { CoreV1Api, ListWatch, Watch, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
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

/**
 * List-and-watch of some Secrets in one namespace. A broken watch (apiserver restart,
 * timeout) restarts after a short delay and re-lists, so every replica converges on what
 * is in Kubernetes within seconds.
 */
export async function watchSecrets(kc: KubeConfig, namespace: string, selector: SecretSelector, handlers: SecretWatchHandlers, log: Logger): Promise<SecretWatch> {
  const api = kc.makeApiClient(CoreV1Api);
  const labelSelector = 'key' in selector ? `${KEY_LABEL}=${selector.key}` : undefined;
  const fieldSelector = 'name' in selector ? `metadata.name=${selector.name}` : undefined;
  const informer = new ListWatch<V1Secret>(
    `/api/v1/namespaces/${namespace}/secrets`,
    new Watch(kc),
    () => api.listNamespacedSecret({ namespace, ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) }),
    false,
    labelSelector,
    fieldSelector,
  );
  const key = 'key' in selector ? selector.key : 'name' in selector ? selector.name : selector.namePrefix;
  const wanted = (secret: V1Secret): boolean => !('namePrefix' in selector) || (secret.metadata?.name ?? '').startsWith(selector.namePrefix);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  informer.on('add', (secret) => wanted(secret) && handlers.onUpsert(secret));
  informer.on('update', (secret) => wanted(secret) && handlers.onUpsert(secret));
  informer.on('delete', (secret) => wanted(secret) && handlers.onDelete(secret));
  informer.on('error', (error: unknown) => {
    if (stopped) return;
    log.warn({ err: error, namespace, key }, 'secret watch broke; restarting');
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
