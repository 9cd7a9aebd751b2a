import { CoreV1Api, makeInformer, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
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
 * List-and-watch of the Secrets carrying `meshid.io/key=<key>` in one namespace. A broken
 * watch (apiserver restart, timeout) restarts after a short delay and re-lists, so every
 * replica converges on what is in Kubernetes within seconds.
 */
export async function watchSecrets(kc: KubeConfig, namespace: string, key: string, handlers: SecretWatchHandlers, log: Logger): Promise<SecretWatch> {
  const api = kc.makeApiClient(CoreV1Api);
  const labelSelector = `${KEY_LABEL}=${key}`;
  const informer = makeInformer<V1Secret>(
    kc,
    `/api/v1/namespaces/${namespace}/secrets`,
    () => api.listNamespacedSecret({ namespace, labelSelector }),
    labelSelector,
  );
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  informer.on('add', (secret) => handlers.onUpsert(secret));
  informer.on('update', (secret) => handlers.onUpsert(secret));
  informer.on('delete', (secret) => handlers.onDelete(secret));
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
