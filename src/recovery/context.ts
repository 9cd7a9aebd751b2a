import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock, Logger, Progress } from '../core/index.ts';
import type { Inventory } from './inventory.ts';
import type { Journal } from './journal.ts';
import type { MeshScope } from './namespaces.ts';
import type { StepReport } from './report.ts';
import type { StepName } from './steps.ts';

/** New plugged-in CA material, from files the operator names. */
export interface PluggedMaterial {
  certChainPem: string;
  keyPem: string;
  rootCertPem: string;
  caCertPem?: string;
}

/**
 * After a compromise the old roots are suspect: the new one signs soon, the old ones go soon
 * after. `meshid recover`'s --ca-propagation and --ca-grace default to these; this file
 * imports only types, so the CLI's help shows them without loading recovery.
 */
export const RECOVERY_CA_PROPAGATION_MS = 5_000;
export const RECOVERY_CA_GRACE_MS = 5_000;

export interface RecoveryOptions {
  meshidNamespace: string;
  registryNamespace: string;
  /** The ConfigMap the CA publishes its trust bundle in (istio-ca-root-cert). */
  rootConfigMap: string;
  scope: MeshScope;
  steps: StepName[];
  ca: {
    /** How long the new root is trusted before it signs: agents fetch it first. Short, after a compromise. */
    propagationMs: number;
    /** How long the old roots stay trusted after the switch: ~0, since they are compromised. */
    graceMs: number;
    restartWorkloads: boolean;
    plugged?: PluggedMaterial;
  };
  reissueAdminToken: boolean;
  /** How long to wait for restarted workloads to be back before reporting them. */
  rolloutTimeoutMs: number;
  /** How long a check waits for the servers' and apiserver's caches to notice a change. */
  verifyTimeoutMs: number;
}

/**
 * The meshid server as the operator reaches it, for checks that only the server can answer:
 * is this session or user token accepted? Answers the HTTP status of GET /api/whoami.
 */
export interface ServerProbe {
  describe: string;
  whoami(token: string): Promise<number>;
}

/** Old credentials read before acting, kept in memory only, to prove afterwards they are refused. */
export interface Captured {
  serviceAccountTokens: { namespace: string; name: string; token: string }[];
  sessionKeys: { kid: string; secret: Uint8Array }[];
  signingKeys: { serial: number; pem: string }[];
  caRoots: string[];
}

export interface StepContext {
  kc: KubeConfig;
  options: RecoveryOptions;
  inventory: Inventory;
  journal: Journal;
  progress: Progress;
  clock: Clock;
  log: Logger;
  probe: ServerProbe | undefined;
  captured: Captured;
  report: StepReport;
}

/** Polls `check` every `everyMs` until it holds or `ms` pass; answers whether it held. */
export async function until(ms: number, check: () => Promise<boolean>, everyMs = 250): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(everyMs, Math.max(0, deadline - Date.now()))));
  }
}
