import { CoreV1Api, ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../core/index.ts';
import { KEY_LABEL } from './secrets.ts';

export interface SecretWatch {
  stop(): Promise<void>;
  /** Every object the apiserver has sent this watch and it still holds: what a selector let through. */
  observed(): readonly KubernetesObject[];
}

export interface SecretWatchHandlers {
  onUpsert(secret: V1Secret): void;
  onDelete(secret: V1Secret): void;
}

const RESTART_DELAY_MS = 1000;

/**
 * Which Secrets a watch reads, chosen by the apiserver so that no other Secret (a CA key, say)
 * ever reaches the watcher: a set meshid writes itself by its key label, and one Secret that
 * people may also make by hand (kubectl apply, unlabelled) by its name.
 */
export type SecretSelector = { key: string } | { name: string };

/** The selector as list and watch query parameters. */
export function secretQuery(selector: SecretSelector): { labelSelector: string } | { fieldSelector: string } {
  return 'key' in selector ? { labelSelector: `${KEY_LABEL}=${selector.key}` } : { fieldSelector: `metadata.name=${selector.name}` };
}

/** List-and-watch of the Secrets in one namespace that `selector` picks. */
export async function watchSecrets(kc: KubeConfig, namespace: string, selector: SecretSelector, handlers: SecretWatchHandlers, log: Logger): Promise<SecretWatch> {
  const api = kc.makeApiClient(CoreV1Api);
  const query = secretQuery(selector);
  return watchObjects<V1Secret>(
    kc,
    {
      path: `/api/v1/namespaces/${namespace}/secrets`,
      list: () => api.listNamespacedSecret({ namespace, ...query }),
      ...query,
      what: `secrets ${namespace}/${'key' in selector ? selector.key : selector.name}`,
    },
    handlers,
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
    observed: () => informer.list(),
  };
}
