import { randomUUID } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { PART_OF_LABEL, isConflict, isNotFound } from '../kube/index.ts';
import { isStep, type StepName } from './steps.ts';

/**
 * ConfigMap `meshid-recovery` in meshid's namespace: which steps of the current recovery are
 * done, and what they made (the new root's fingerprint, the new key's serial). A run that was
 * interrupted is resumed by the next run of the same steps, which skips what is done and
 * carries on with what it recorded, so no key is rotated twice. It holds no secret.
 */
export const JOURNAL_CONFIGMAP = 'meshid-recovery';
const KEY = 'recovery.json';

export interface StepRecord {
  startedAt: string;
  completedAt?: string;
  durationMs?: number;
  /** ca: SHA-256 fingerprint of the new root. */
  newRoot?: string;
  /** signing-key: serial of the new key. */
  newSerial?: number;
}

export interface JournalState {
  id: string;
  steps: StepName[];
  startedAt: string;
  finishedAt?: string;
  progress: Partial<Record<StepName, StepRecord>>;
}

export function parseJournal(text: string | undefined): JournalState | undefined {
  if (!text) return undefined;
  try {
    const raw = JSON.parse(text) as Partial<JournalState>;
    if (typeof raw.id !== 'string' || typeof raw.startedAt !== 'string' || !Array.isArray(raw.steps) || !raw.steps.every((s) => typeof s === 'string' && isStep(s))) return undefined;
    return { id: raw.id, steps: raw.steps, startedAt: raw.startedAt, ...(raw.finishedAt ? { finishedAt: raw.finishedAt } : {}), progress: raw.progress ?? {} };
  } catch {
    // An unreadable journal is no reason to refuse a recovery: start afresh.
    return undefined;
  }
}

/** An unfinished recovery of exactly these steps is resumed; anything else starts anew. */
export function resumable(state: JournalState | undefined, steps: StepName[]): state is JournalState {
  return state !== undefined && state.finishedAt === undefined && state.steps.length === steps.length && state.steps.every((s, i) => s === steps[i]);
}

export function freshJournal(steps: StepName[], now: Date): JournalState {
  return { id: randomUUID(), steps, startedAt: now.toISOString(), progress: {} };
}

export class Journal {
  readonly #api: CoreV1Api;
  #version: string | undefined;

  private constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    public state: JournalState,
    version: string | undefined,
  ) {
    this.#api = kc.makeApiClient(CoreV1Api);
    this.#version = version;
  }

  /** What is stored now, without writing anything (plans and dry runs). */
  static async peek(kc: KubeConfig, namespace: string): Promise<{ state: JournalState | undefined; version: string | undefined }> {
    try {
      const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name: JOURNAL_CONFIGMAP });
      return { state: parseJournal(cm.data?.[KEY]), version: cm.metadata?.resourceVersion };
    } catch (error) {
      if (isNotFound(error)) return { state: undefined, version: undefined };
      throw error;
    }
  }

  /** Resumes the unfinished recovery of these steps, or records a new one. */
  static async open(kc: KubeConfig, namespace: string, steps: StepName[], now: Date): Promise<{ journal: Journal; resumed: boolean }> {
    const { state, version } = await Journal.peek(kc, namespace);
    const resumed = resumable(state, steps);
    const journal = new Journal(kc, namespace, resumed ? state : freshJournal(steps, now), version);
    await journal.save();
    return { journal, resumed };
  }

  done(step: StepName): boolean {
    return this.state.progress[step]?.completedAt !== undefined;
  }

  record(step: StepName): StepRecord | undefined {
    return this.state.progress[step];
  }

  async update(step: StepName, change: Partial<StepRecord>): Promise<void> {
    const before = this.state.progress[step] ?? { startedAt: new Date().toISOString() };
    this.state.progress[step] = { ...before, ...change };
    await this.save();
  }

  async finish(now: Date): Promise<void> {
    this.state.finishedAt = now.toISOString();
    await this.save();
  }

  /** Optimistic concurrency: a second recovery running at the same time makes this fail. */
  async save(): Promise<void> {
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: JOURNAL_CONFIGMAP, namespace: this.namespace, labels: { [PART_OF_LABEL]: 'meshid' }, ...(this.#version ? { resourceVersion: this.#version } : {}) },
      data: { [KEY]: JSON.stringify(this.state) },
    };
    try {
      const saved = this.#version
        ? await this.#api.replaceNamespacedConfigMap({ namespace: this.namespace, name: JOURNAL_CONFIGMAP, body })
        : await this.#api.createNamespacedConfigMap({ namespace: this.namespace, body });
      this.#version = saved.metadata?.resourceVersion;
    } catch (error) {
      if (isConflict(error)) {
        throw new MeshidError('ERR_RECOVERY_FAILED', `ConfigMap ${this.namespace}/${JOURNAL_CONFIGMAP} changed underneath: is another \`meshid recover\` running?`, {
          cause: error,
          hint: 'Let the other run finish, then run this one again: it resumes where things stand.',
        });
      }
      throw error;
    }
  }
}
