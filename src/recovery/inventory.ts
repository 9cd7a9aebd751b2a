import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { caStatus } from '../ca/index.ts';
import { createLogger, isMeshidError } from '../core/index.ts';
import { SecretClient, decodeSecret } from '../kube/index.ts';
import { readStoredSessionKeys } from '../authn/index.ts';
import { ADMIN_TOKEN_SECRET, KubeSigningKeys } from '../tokens/index.ts';
import { RegistryStore, reconcileRegistries, type ReconcileResult, type RegistryEntry } from '../registry/index.ts';
import { Journal, type JournalState } from './journal.ts';
import { resolveMeshNamespaces, type MeshScope } from './namespaces.ts';
import type { StepName } from './steps.ts';
import { listWorkloads, type PodRef, type Workload } from './workloads.ts';

export const SERVICE_ACCOUNT_TOKEN_TYPE = 'kubernetes.io/service-account-token';
export const TOKEN_TYPE_SELECTOR = `type=${SERVICE_ACCOUNT_TOKEN_TYPE}`;

export interface TokenSecretRef {
  namespace: string;
  name: string;
  serviceAccount?: string;
}

export interface CaInventory {
  mode: 'self-signed' | 'plugged-in' | 'absent';
  rootFingerprint?: string;
  /** Roots trusted now. */
  bundle: string[];
  rotationInProgress: boolean;
  /** A new root is announced and not yet signing. */
  pendingRoot: boolean;
}

/** Everything a plan is built from, read with the operator's RBAC and nothing written. */
export interface Inventory {
  meshidNamespace: string;
  registryNamespace: string;
  rootConfigMap: string;
  namespaces: string[];
  absentNamespaces: string[];
  tokenSecrets: TokenSecretRef[];
  workloads: Workload[];
  pods: PodRef[];
  session: { present: boolean; keys: number };
  signingKeys: number[];
  adminToken: boolean;
  ca: CaInventory;
  registry: { entries: RegistryEntry[]; reconcile: ReconcileResult | undefined };
  /** The recovery this run would resume, if any. */
  journal: JournalState | undefined;
}

export interface InventoryOptions {
  meshidNamespace: string;
  registryNamespace: string;
  rootConfigMap: string;
  scope: MeshScope;
  steps: StepName[];
}

export async function tokenSecrets(kc: KubeConfig, namespace: string): Promise<{ ref: TokenSecretRef; token: string | undefined }[]> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace, fieldSelector: `type=${SERVICE_ACCOUNT_TOKEN_TYPE}` });
  return list.items
    .map((s) => {
      const sa = s.metadata?.annotations?.['kubernetes.io/service-account.name'];
      return { ref: { namespace, name: s.metadata?.name ?? '', ...(sa ? { serviceAccount: sa } : {}) }, token: decodeSecret(s)['token'] };
    })
    .sort((a, b) => a.ref.name.localeCompare(b.ref.name));
}

export async function readCa(kc: KubeConfig, namespace: string): Promise<CaInventory> {
  try {
    const status = await caStatus(kc, namespace);
    return {
      mode: status.mode,
      rootFingerprint: status.rootFingerprint,
      bundle: status.trustBundle.map((r) => r.fingerprint),
      rotationInProgress: status.rotation !== undefined,
      pendingRoot: status.rotation?.newRootSignsAt !== undefined,
    };
  } catch (error) {
    if (isMeshidError(error, 'ERR_NOT_FOUND')) return { mode: 'absent', bundle: [], rotationInProgress: false, pendingRoot: false };
    throw error;
  }
}

export async function gatherInventory(kc: KubeConfig, options: InventoryOptions): Promise<Inventory> {
  const wants = (step: StepName): boolean => options.steps.includes(step);
  const { present, absent } = await resolveMeshNamespaces(kc, options.scope);
  const secrets = new SecretClient(kc);
  const inventory: Inventory = {
    meshidNamespace: options.meshidNamespace,
    registryNamespace: options.registryNamespace,
    rootConfigMap: options.rootConfigMap,
    namespaces: present,
    absentNamespaces: absent,
    tokenSecrets: [],
    workloads: [],
    pods: [],
    session: { present: false, keys: 0 },
    signingKeys: [],
    adminToken: false,
    ca: { mode: 'absent', bundle: [], rotationInProgress: false, pendingRoot: false },
    registry: { entries: [], reconcile: undefined },
    journal: (await Journal.peek(kc, options.meshidNamespace)).state,
  };
  if (wants('service-account-tokens')) {
    for (const namespace of present) {
      inventory.tokenSecrets.push(...(await tokenSecrets(kc, namespace)).map((t) => t.ref));
      const { workloads, pods } = await listWorkloads(kc, namespace);
      inventory.workloads.push(...workloads);
      inventory.pods.push(...pods);
    }
  }
  if (wants('jwt-key')) {
    const keys = await readStoredSessionKeys(kc, options.meshidNamespace);
    inventory.session = { present: keys !== undefined, keys: keys?.length ?? 0 };
  }
  if (wants('signing-key')) {
    inventory.signingKeys = (await new KubeSigningKeys(kc, options.meshidNamespace, createLogger('meshid', 'silent')).listStored()).map((k) => k.serial);
    inventory.adminToken = (await secrets.read(options.meshidNamespace, ADMIN_TOKEN_SECRET)) !== undefined;
  }
  if (wants('ca')) {
    inventory.ca = await readCa(kc, options.meshidNamespace);
    if (!wants('service-account-tokens')) {
      // --restart-workloads needs to know what runs there.
      for (const namespace of present) {
        const { workloads, pods } = await listWorkloads(kc, namespace);
        inventory.workloads.push(...workloads);
        inventory.pods.push(...pods);
      }
    }
  }
  if (wants('registry')) {
    inventory.registry = {
      entries: await new RegistryStore(kc, options.registryNamespace).list(),
      reconcile: await reconcileRegistries(kc, { registryNamespace: options.registryNamespace, namespaces: present, dryRun: true }),
    };
  }
  return inventory;
}
