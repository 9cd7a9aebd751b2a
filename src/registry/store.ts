import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { KEY_LABEL, PART_OF_LABEL, isConflict, isNotFound } from '../kube/index.ts';
import { DOCKER_CONFIG_KEY, DOCKER_CONFIG_TYPE, checkEntryName, parseDockerConfig, serializeDockerConfig, summarize, type DockerConfig, type RegistryServer } from './dockerconfig.ts';

/** Where meshid keeps image-registry credentials (DESIGN.md §2). */
export const REGISTRY_NAMESPACE = 'meshid-registry-access';
/** meshid.io/key value on a stored entry. */
export const REGISTRY_KEY = 'registry';
/** When the entry's credentials were last written (add or add --replace). */
export const UPDATED_AT_ANNOTATION = 'meshid.io/updated-at';

export interface RegistryEntry {
  name: string;
  servers: RegistryServer[];
  /** When these credentials were stored: ones older than a compromise are suspect. */
  updatedAt: string | undefined;
  /** Set when the Secret is meshid's but its content is unreadable. */
  error?: string;
}

/** An entry as reconcile copies it: the Secret's data, byte for byte. */
export interface StoredEntry {
  name: string;
  data: Record<string, string>;
}

const ENTRY_SELECTOR = `${PART_OF_LABEL}=meshid,${KEY_LABEL}=${REGISTRY_KEY}`;

function isEntry(secret: V1Secret): boolean {
  return secret.metadata?.labels?.[KEY_LABEL] === REGISTRY_KEY && secret.metadata.labels[PART_OF_LABEL] === 'meshid';
}

function updatedAt(secret: V1Secret): string | undefined {
  const stamp = secret.metadata?.annotations?.[UPDATED_AT_ANNOTATION] ?? secret.metadata?.creationTimestamp;
  return stamp === undefined ? undefined : new Date(stamp).toISOString();
}

/**
 * Registry credentials as dockerconfigjson Secrets in one namespace. Reads and writes go
 * with the operator's own RBAC; only Secrets labelled as meshid's entries are listed,
 * replaced or removed, so other Secrets in the namespace are never touched.
 */
export class RegistryStore {
  readonly #api: CoreV1Api;

  constructor(
    kc: KubeConfig,
    readonly namespace: string = REGISTRY_NAMESPACE,
  ) {
    this.#api = kc.makeApiClient(CoreV1Api);
  }

  async list(): Promise<RegistryEntry[]> {
    const secrets = await this.#listSecrets();
    return secrets.map((secret) => {
      const name = secret.metadata?.name ?? '';
      try {
        return { name, servers: summarize(this.#config(secret)), updatedAt: updatedAt(secret) };
      } catch (error) {
        return { name, servers: [], updatedAt: updatedAt(secret), error: (error as Error).message };
      }
    });
  }

  /** The entries' Secret data, for copying into other namespaces. */
  async stored(): Promise<StoredEntry[]> {
    return (await this.#listSecrets()).map((s) => ({ name: s.metadata?.name ?? '', data: s.data ?? {} }));
  }

  /**
   * Stores an entry. The input was checked before anything is written, so bad input changes
   * nothing; an existing entry is replaced only when asked to.
   */
  async add(name: string, config: DockerConfig, options: { replace?: boolean; now?: Date } = {}): Promise<{ created: boolean }> {
    checkEntryName(name);
    summarize(config);
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: this.namespace,
        labels: { [PART_OF_LABEL]: 'meshid', [KEY_LABEL]: REGISTRY_KEY },
        annotations: { [UPDATED_AT_ANNOTATION]: (options.now ?? new Date()).toISOString() },
      },
      type: DOCKER_CONFIG_TYPE,
      stringData: { [DOCKER_CONFIG_KEY]: serializeDockerConfig(config) },
    };
    await this.#ensureNamespace();
    const existing = await this.#read(name);
    if (!existing) {
      try {
        await this.#api.createNamespacedSecret({ namespace: this.namespace, body });
        return { created: true };
      } catch (error) {
        if (!isConflict(error)) throw error;
        throw exists(name, this.namespace);
      }
    }
    if (!isEntry(existing)) {
      throw new MeshidError('ERR_REGISTRY_EXISTS', `Secret ${this.namespace}/${name} exists and is not a meshid registry entry; nothing was changed`, {
        hint: 'Pick another --name.',
      });
    }
    if (!options.replace) throw exists(name, this.namespace);
    body.metadata = { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' };
    await this.#api.replaceNamespacedSecret({ namespace: this.namespace, name, body });
    return { created: false };
  }

  async remove(name: string): Promise<void> {
    const existing = await this.#read(name);
    if (!existing || !isEntry(existing)) {
      throw new MeshidError('ERR_NOT_FOUND', `there is no registry entry "${name}" in ${this.namespace}`, { hint: 'See the entries with `meshid registry list`.' });
    }
    try {
      await this.#api.deleteNamespacedSecret({ namespace: this.namespace, name, body: { preconditions: { uid: existing.metadata?.uid ?? '' } } });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  #config(secret: V1Secret): DockerConfig {
    const raw = secret.data?.[DOCKER_CONFIG_KEY];
    if (raw === undefined) throw new MeshidError('ERR_REGISTRY_INVALID', `Secret ${this.namespace}/${secret.metadata?.name ?? ''} has no ${DOCKER_CONFIG_KEY}`);
    return parseDockerConfig(Buffer.from(raw, 'base64').toString('utf8'), `Secret ${this.namespace}/${secret.metadata?.name ?? ''}`);
  }

  async #listSecrets(): Promise<V1Secret[]> {
    try {
      const list = await this.#api.listNamespacedSecret({ namespace: this.namespace, labelSelector: ENTRY_SELECTOR });
      return list.items.filter(isEntry).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
    } catch (error) {
      // No namespace yet means no entries yet.
      if (isNotFound(error)) return [];
      throw error;
    }
  }

  async #read(name: string): Promise<V1Secret | undefined> {
    try {
      return await this.#api.readNamespacedSecret({ namespace: this.namespace, name });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async #ensureNamespace(): Promise<void> {
    try {
      await this.#api.readNamespace({ name: this.namespace });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.#api
        .createNamespace({ body: { metadata: { name: this.namespace, labels: { [PART_OF_LABEL]: 'meshid' } } } })
        .catch((e: unknown) => {
          if (!isConflict(e)) throw e;
        });
    }
  }
}

function exists(name: string, namespace: string): MeshidError {
  return new MeshidError('ERR_REGISTRY_EXISTS', `registry entry "${name}" already exists in ${namespace}; nothing was changed`, {
    hint: 'Re-key it with --replace, or `meshid registry remove` it first.',
  });
}
