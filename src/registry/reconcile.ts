import { CoreV1Api, type KubeConfig, type V1Secret, type V1ServiceAccount } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { PART_OF_LABEL, isConflict, isNotFound } from '../kube/index.ts';
import { DOCKER_CONFIG_TYPE } from './dockerconfig.ts';
import { RegistryStore, REGISTRY_NAMESPACE, type StoredEntry } from './store.ts';

/** On a pull-secret copy: the entry it was copied from. */
export const COPY_LABEL = 'meshid.io/registry-entry';
export const SOURCE_ANNOTATION = 'meshid.io/registry-source';
/** On a ServiceAccount: the pull secrets meshid put there, so it takes back only its own. */
export const PULL_SECRETS_ANNOTATION = 'meshid.io/image-pull-secrets';

export type CopyAction = 'created' | 'updated' | 'unchanged' | 'deleted' | 'conflict';

export interface CopyResult {
  namespace: string;
  name: string;
  action: CopyAction;
  detail?: string;
}

export interface ServiceAccountResult {
  namespace: string;
  name: string;
  added: string[];
  removed: string[];
}

export interface ReconcileResult {
  registryNamespace: string;
  entries: string[];
  namespaces: string[];
  /** Asked for but absent: nothing to do there. */
  absentNamespaces: string[];
  copies: CopyResult[];
  serviceAccounts: ServiceAccountResult[];
}

export interface ReconcileOptions {
  registryNamespace?: string;
  /** Where the mesh runs: pull secrets are copied here. */
  namespaces: string[];
  /** Work out what would change, and change nothing. */
  dryRun?: boolean;
  onProgress?: (text: string) => void;
}

const sameData = (a: Record<string, string> | undefined, b: Record<string, string>): boolean => {
  const ka = Object.keys(a ?? {}).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a?.[k] === b[k]);
};

/** Names meshid manages on a ServiceAccount, from its annotation. */
export function managedPullSecrets(sa: V1ServiceAccount): string[] {
  return (sa.metadata?.annotations?.[PULL_SECRETS_ANNOTATION] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/**
 * What a ServiceAccount's imagePullSecrets should be: the ones it has, minus those meshid put
 * there whose entry is gone, plus every current entry. Order is kept; nothing is duplicated.
 */
export function desiredPullSecrets(current: string[], managed: string[], entries: string[]): string[] {
  const stale = new Set(managed.filter((n) => !entries.includes(n)));
  const kept = current.filter((n) => !stale.has(n));
  return [...new Set([...kept, ...entries])];
}

/**
 * Makes the mesh namespaces match the registry entries: a copy of each entry's pull secret,
 * referenced by every ServiceAccount there; copies whose entry is gone are deleted and their
 * references taken back. Running it again changes nothing. With `dryRun` it answers what it
 * would do, which is also how recovery checks that nothing has drifted.
 */
export async function reconcileRegistries(kc: KubeConfig, options: ReconcileOptions): Promise<ReconcileResult> {
  const registryNamespace = options.registryNamespace ?? REGISTRY_NAMESPACE;
  const api = kc.makeApiClient(CoreV1Api);
  const dryRun = options.dryRun ?? false;
  const entries = await new RegistryStore(kc, registryNamespace).stored();
  const result: ReconcileResult = { registryNamespace, entries: entries.map((e) => e.name), namespaces: [], absentNamespaces: [], copies: [], serviceAccounts: [] };
  for (const namespace of [...new Set(options.namespaces)].filter((n) => n !== registryNamespace)) {
    const exists = await api.readNamespace({ name: namespace }).then(
      (ns) => ns.status?.phase !== 'Terminating',
      (error: unknown) => {
        if (isNotFound(error)) return false;
        throw error;
      },
    );
    if (!exists) {
      result.absentNamespaces.push(namespace);
      continue;
    }
    result.namespaces.push(namespace);
    options.onProgress?.(`registry: reconciling ${namespace}`);
    const placed: string[] = [];
    for (const entry of entries) {
      const copy = await copyEntry(api, registryNamespace, namespace, entry, dryRun);
      result.copies.push(copy);
      if (copy.action !== 'conflict') placed.push(entry.name);
    }
    const copies = await api.listNamespacedSecret({ namespace, labelSelector: COPY_LABEL });
    for (const stale of copies.items.filter((s) => !entries.some((e) => e.name === s.metadata?.labels?.[COPY_LABEL]))) {
      const name = stale.metadata?.name ?? '';
      if (!dryRun) {
        await api.deleteNamespacedSecret({ namespace, name }).catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        });
      }
      result.copies.push({ namespace, name, action: 'deleted', detail: 'its registry entry is gone' });
    }
    result.serviceAccounts.push(...(await updateServiceAccounts(api, namespace, placed, dryRun)));
  }
  return result;
}

/** Whether a reconcile result changed (or, dry, would change) anything. */
export function reconcileChanges(result: ReconcileResult): number {
  return result.copies.filter((c) => c.action !== 'unchanged' && c.action !== 'conflict').length + result.serviceAccounts.length;
}

async function copyEntry(api: CoreV1Api, registryNamespace: string, namespace: string, entry: StoredEntry, dryRun: boolean): Promise<CopyResult> {
  const body: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: entry.name,
      namespace,
      labels: { [PART_OF_LABEL]: 'meshid', [COPY_LABEL]: entry.name },
      annotations: { [SOURCE_ANNOTATION]: `${registryNamespace}/${entry.name}` },
    },
    type: DOCKER_CONFIG_TYPE,
    data: entry.data,
  };
  const existing = await api.readNamespacedSecret({ namespace, name: entry.name }).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
  if (!existing) {
    if (!dryRun) await api.createNamespacedSecret({ namespace, body });
    return { namespace, name: entry.name, action: 'created' };
  }
  if (existing.metadata?.labels?.[COPY_LABEL] !== entry.name) {
    return { namespace, name: entry.name, action: 'conflict', detail: 'a Secret of that name exists and is not a meshid copy; it was left alone' };
  }
  if (existing.type === DOCKER_CONFIG_TYPE && sameData(existing.data, entry.data)) return { namespace, name: entry.name, action: 'unchanged' };
  if (dryRun) return { namespace, name: entry.name, action: 'updated' };
  if (existing.type !== DOCKER_CONFIG_TYPE) {
    // A Secret's type cannot change in place.
    await api.deleteNamespacedSecret({ namespace, name: entry.name });
    await api.createNamespacedSecret({ namespace, body });
  } else {
    body.metadata = { ...body.metadata, resourceVersion: existing.metadata.resourceVersion ?? '' };
    await api.replaceNamespacedSecret({ namespace, name: entry.name, body });
  }
  return { namespace, name: entry.name, action: 'updated' };
}

async function updateServiceAccounts(api: CoreV1Api, namespace: string, entries: string[], dryRun: boolean): Promise<ServiceAccountResult[]> {
  const results: ServiceAccountResult[] = [];
  const list = await api.listNamespacedServiceAccount({ namespace });
  for (let sa of list.items) {
    const name = sa.metadata?.name ?? '';
    for (let attempt = 0; ; attempt++) {
      const current = (sa.imagePullSecrets ?? []).map((r) => r.name ?? '').filter(Boolean);
      const managed = managedPullSecrets(sa);
      const want = desiredPullSecrets(current, managed, entries);
      const wantManaged = [...entries].sort();
      const unchanged = want.length === current.length && want.every((n, i) => n === current[i]) && wantManaged.join(',') === [...managed].sort().join(',');
      if (unchanged) break;
      const added = want.filter((n) => !current.includes(n));
      const removed = current.filter((n) => !want.includes(n));
      if (dryRun) {
        if (added.length > 0 || removed.length > 0) results.push({ namespace, name, added, removed });
        break;
      }
      const annotations = { ...(sa.metadata?.annotations ?? {}) };
      if (wantManaged.length > 0) annotations[PULL_SECRETS_ANNOTATION] = wantManaged.join(',');
      else delete annotations[PULL_SECRETS_ANNOTATION];
      try {
        await api.replaceNamespacedServiceAccount({ namespace, name, body: { ...sa, metadata: { ...sa.metadata, annotations }, imagePullSecrets: want.map((n) => ({ name: n })) } });
        if (added.length > 0 || removed.length > 0) results.push({ namespace, name, added, removed });
        break;
      } catch (error) {
        // Someone else changed the account (or it went away): read it again and redo the change.
        if (isNotFound(error)) break;
        if (!isConflict(error) || attempt >= 4) {
          if (isConflict(error)) throw new MeshidError('ERR_KUBE_UNAVAILABLE', `ServiceAccount ${namespace}/${name} kept changing underneath; run reconcile again`, { cause: error });
          throw error;
        }
        sa = await api.readNamespacedServiceAccount({ namespace, name });
      }
    }
  }
  return results;
}
