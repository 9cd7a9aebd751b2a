import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { isConflict, isNotFound } from './errors.ts';

/** Labels on every Secret meshid owns, so one informer (label selector) finds them. */
export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const KEY_LABEL = 'meshid.io/key';

export type SecretStrings = Record<string, string>;

export function decodeSecret(secret: V1Secret): SecretStrings {
  const out: SecretStrings = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

function encode(data: SecretStrings): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}

export interface SecretSpec {
  namespace: string;
  name: string;
  /** Value of the meshid.io/key label. */
  key: string;
  type?: string;
}

/** Typed access to the Secrets that hold meshid's keys; Kubernetes is the only store. */
export class SecretClient {
  readonly #api: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.#api = kc.makeApiClient(CoreV1Api);
  }

  async read(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.#api.readNamespacedSecret({ namespace, name });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * Creates the Secret unless it exists; answers whichever now exists. When several
   * replicas race, the apiserver lets exactly one create succeed and the rest read it.
   */
  async createIfAbsent(spec: SecretSpec, data: () => SecretStrings): Promise<{ secret: V1Secret; created: boolean }> {
    const existing = await this.read(spec.namespace, spec.name);
    if (existing) return { secret: existing, created: false };
    try {
      const secret = await this.#api.createNamespacedSecret({ namespace: spec.namespace, body: this.#body(spec, data()) });
      return { secret, created: true };
    } catch (error) {
      if (!isConflict(error)) throw error;
      const winner = await this.read(spec.namespace, spec.name);
      if (!winner) throw error;
      return { secret: winner, created: false };
    }
  }

  /**
   * Replaces the data if the Secret is still at `resourceVersion` (optimistic concurrency):
   * a concurrent writer makes this throw a 409 instead of silently losing its change.
   */
  async replace(spec: SecretSpec, resourceVersion: string, data: SecretStrings): Promise<V1Secret> {
    const body = this.#body(spec, data);
    body.metadata = { ...body.metadata, resourceVersion };
    return this.#api.replaceNamespacedSecret({ namespace: spec.namespace, name: spec.name, body });
  }

  #body(spec: SecretSpec, data: SecretStrings): V1Secret {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: spec.name, namespace: spec.namespace, labels: { [PART_OF_LABEL]: 'meshid', [KEY_LABEL]: spec.key } },
      type: spec.type ?? 'Opaque',
      data: encode(data),
    };
  }
}
