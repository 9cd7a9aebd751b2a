import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { systemClock, type Clock, type Logger } from '../core/index.ts';
import { PART_OF_LABEL, isConflict, isNotFound } from '../kube/index.ts';

/** Where the CA replicas keep the latest certificate per identity, for the dashboard. */
export const ISSUED_CONFIGMAP = 'meshid-issued-identities';
const DATA_KEY = 'identities.json';
/** A ConfigMap holds 1 MiB; at ~200 bytes an entry this leaves room to spare. */
export const MAX_LEDGER_ENTRIES = 3000;
const FLUSH_MS = 10_000;
const CONFLICT_RETRIES = 3;

export interface IssuedIdentity {
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  serial: string;
  issuedAt: string;
  notAfter: string;
}

/** Newest first by issue time; expired entries and all but the newest per identity dropped. */
export function mergeIssued(entries: Iterable<IssuedIdentity>, now: number, max = MAX_LEDGER_ENTRIES): IssuedIdentity[] {
  const latest = new Map<string, IssuedIdentity>();
  for (const entry of entries) {
    if (Date.parse(entry.notAfter) <= now) continue;
    const seen = latest.get(entry.spiffeId);
    if (!seen || seen.issuedAt < entry.issuedAt) latest.set(entry.spiffeId, entry);
  }
  return [...latest.values()].sort((a, b) => (a.issuedAt < b.issuedAt ? 1 : -1)).slice(0, max);
}

function parseLedger(cm: V1ConfigMap | undefined): IssuedIdentity[] {
  try {
    const parsed: unknown = JSON.parse(cm?.data?.[DATA_KEY] ?? '[]');
    return Array.isArray(parsed) ? parsed.filter(isIssued) : [];
  } catch {
    // A hand-edited or truncated ledger is only a view: start it again rather than fail issuing.
    return [];
  }
}

function isIssued(value: unknown): value is IssuedIdentity {
  const v = value as Record<string, unknown> | null;
  return typeof v === 'object' && v !== null && ['spiffeId', 'namespace', 'serviceAccount', 'serial', 'issuedAt', 'notAfter'].every((k) => typeof v[k] === 'string');
}

/** Reads the shared ledger; an absent ConfigMap is an empty ledger. */
export async function readIssued(kc: KubeConfig, namespace: string, clock: Clock = systemClock): Promise<IssuedIdentity[]> {
  const api = kc.makeApiClient(CoreV1Api);
  const cm = await api.readNamespacedConfigMap({ name: ISSUED_CONFIGMAP, namespace }).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  return mergeIssued(parseLedger(cm), clock.now());
}

/**
 * The CA's memory of what it issued: the newest leaf per identity, written to a shared
 * ConfigMap every few seconds (never per certificate: the CA signs thousands a second).
 * Replicas merge their entries into it under optimistic concurrency.
 */
export class IssuanceLedger {
  readonly #pending = new Map<string, IssuedIdentity>();
  readonly #api: CoreV1Api;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.#api = kc.makeApiClient(CoreV1Api);
  }

  record(entry: IssuedIdentity): void {
    this.#pending.delete(entry.spiffeId);
    this.#pending.set(entry.spiffeId, entry);
    // Bounded between flushes too: the oldest pending entry gives way.
    if (this.#pending.size > MAX_LEDGER_ENTRIES) this.#pending.delete(this.#pending.keys().next().value as string);
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  /** Writes what is pending; on failure it stays pending for the next round. */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    for (let attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
      try {
        const current = await this.#api.readNamespacedConfigMap({ name: ISSUED_CONFIGMAP, namespace: this.namespace }).catch((error: unknown) => {
          if (isNotFound(error)) return undefined;
          throw error;
        });
        const data = { [DATA_KEY]: JSON.stringify(mergeIssued([...parseLedger(current), ...batch], this.clock.now())) };
        if (current) {
          await this.#api.replaceNamespacedConfigMap({ name: ISSUED_CONFIGMAP, namespace: this.namespace, body: { ...current, data } });
        } else {
          await this.#api.createNamespacedConfigMap({
            namespace: this.namespace,
            body: { metadata: { name: ISSUED_CONFIGMAP, namespace: this.namespace, labels: { [PART_OF_LABEL]: 'meshid' } }, data },
          });
        }
        for (const entry of batch) if (this.#pending.get(entry.spiffeId) === entry) this.#pending.delete(entry.spiffeId);
        return;
      } catch (error) {
        // 409: another replica wrote in between; read again and merge.
        if (!isConflict(error)) {
          this.log.warn({ err: error }, 'could not record issued identities; will retry');
          return;
        }
      }
    }
  }
}
