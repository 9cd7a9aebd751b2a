import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { systemClock, type Clock, type Logger } from '../core/index.ts';
import { KEY_LABEL, PART_OF_LABEL, isConflict, isNotFound } from '../kube/index.ts';
import { kubeCall } from './kube-reviews.ts';

/** What may be used once: a wrapped token (browser handoff) or a certificate-login challenge. */
export type UseKind = 'wrapped-token' | 'challenge';

/** Records first uses, so that a second use is refused on whichever replica it reaches. */
export interface UsedOnce {
  /** True for the first use of `id`; false when it was used before. Kept until `expiresAt`. */
  claim(kind: UseKind, id: string, expiresAt: number): Promise<boolean>;
}

/** One process's memory: for unit tests and tools. A server uses KubeUsedOnce. */
export class MemoryUsedOnce implements UsedOnce {
  readonly #used = new Map<string, number>();

  constructor(private readonly clock: Clock = systemClock) {}

  async claim(kind: UseKind, id: string, expiresAt: number): Promise<boolean> {
    const now = this.clock.now();
    for (const [key, until] of this.#used) if (until <= now) this.#used.delete(key);
    const key = `${kind}:${id}`;
    if (this.#used.has(key)) return false;
    this.#used.set(key, expiresAt);
    return true;
  }
}

export const USED_ONCE_KEY = 'used-once';
/** Epoch seconds after which the mark may go; a label, so a sweep reads it from a list. */
const EXPIRES_LABEL = 'meshid.io/expires';
const SWEEP_INTERVAL_MS = 60_000;

/** The Secret that marks a use: its name is a hash, so the id itself is never stored. */
export function usedOnceName(kind: UseKind, id: string): string {
  return `meshid-used-${createHash('sha256').update(`${kind}:${id}`).digest('hex').slice(0, 40)}`;
}

/**
 * Single use across replicas: the first use creates an empty Secret named after a hash of
 * the id in meshid's namespace. The apiserver lets exactly one create of a name succeed and
 * answers 409 to the rest, so exactly one replica wins, with one call per use and no
 * read-modify-write. Marks are swept after their expiry by whichever replica next uses one
 * (at most once a minute each), so they stay bounded by the uses of the last minute or two.
 * Without the apiserver nothing can be proven unused, so a use fails (503) rather than risk
 * a replay.
 */
export class KubeUsedOnce implements UsedOnce {
  readonly #api: CoreV1Api;
  readonly #clock: Clock;
  #lastSweep = 0;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly log: Logger,
    clock: Clock = systemClock,
  ) {
    this.#api = kc.makeApiClient(CoreV1Api);
    this.#clock = clock;
  }

  async claim(kind: UseKind, id: string, expiresAt: number): Promise<boolean> {
    const won = await kubeCall(async () => {
      try {
        await this.#api.createNamespacedSecret({
          namespace: this.namespace,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'meshid.io/used-once',
            metadata: {
              name: usedOnceName(kind, id),
              labels: { [PART_OF_LABEL]: 'meshid', [KEY_LABEL]: USED_ONCE_KEY, [EXPIRES_LABEL]: String(Math.ceil(expiresAt / 1000)) },
              annotations: { 'meshid.io/kind': kind },
            },
          },
        });
        return true;
      } catch (error) {
        if (isConflict(error)) return false;
        throw error;
      }
    });
    if (this.#clock.now() - this.#lastSweep >= SWEEP_INTERVAL_MS) {
      this.#lastSweep = this.#clock.now();
      void this.sweep().catch((error: unknown) => this.log.warn({ err: error }, 'could not sweep used-once marks; the next use retries'));
    }
    return won;
  }

  /** Deletes the marks whose expiry has passed; another replica deleting the same one first is fine. */
  async sweep(): Promise<number> {
    const now = Math.floor(this.#clock.now() / 1000);
    const list = await this.#api.listNamespacedSecret({ namespace: this.namespace, labelSelector: `${KEY_LABEL}=${USED_ONCE_KEY}` });
    let deleted = 0;
    for (const secret of list.items) {
      const expires = Number(secret.metadata?.labels?.[EXPIRES_LABEL]);
      const name = secret.metadata?.name;
      if (!name || !(expires < now)) continue;
      try {
        await this.#api.deleteNamespacedSecret({ namespace: this.namespace, name });
        deleted++;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    return deleted;
  }
}
