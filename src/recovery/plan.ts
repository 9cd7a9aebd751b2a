import { CA_SECRET, PLUGGED_CA_SECRET } from '../ca/index.ts';
import { SESSION_SECRET_NAME } from '../authn/index.ts';
import { ADMIN_TOKEN_SECRET, SIGNING_KEY_PREFIX } from '../tokens/index.ts';
import type { Inventory } from './inventory.ts';
import { resumable } from './journal.ts';
import { STEP_DESCRIPTIONS, type StepName } from './steps.ts';

export type ActionVerb = 'delete' | 'restart' | 'skip' | 'replace' | 'create' | 'reissue' | 'remove' | 'rotate' | 'plug' | 'publish' | 'update' | 'list';

/** One thing a step will do to one object (or, for `publish`, to a kind of object). */
export interface PlannedAction {
  action: ActionVerb;
  kind: string;
  namespace?: string;
  name: string;
  detail?: string;
}

export interface StepPlan {
  step: StepName;
  description: string;
  summary: string;
  actions: PlannedAction[];
  /** Done by the interrupted recovery this run resumes. */
  done?: boolean;
  /** Why the step cannot run as asked (e.g. a plugged-in CA without new material). */
  blocked?: string;
}

export interface RecoveryPlan {
  meshidNamespace: string;
  registryNamespace: string;
  meshNamespaces: string[];
  absentNamespaces: string[];
  /** Set when this run resumes an interrupted recovery. */
  resumes?: { id: string; startedAt: string; done: StepName[] };
  steps: StepPlan[];
}

export interface PlanOptions {
  steps: StepName[];
  ca: {
    propagationMs: number;
    graceMs: number;
    /** New plugged-in material was given (--cert-chain/--key/--root): its root's fingerprint. */
    pluggedRoot?: string;
    restartWorkloads: boolean;
  };
  reissueAdminToken: boolean;
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`;
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function restartActions(inv: Inventory): PlannedAction[] {
  return [
    ...inv.workloads.map((w): PlannedAction =>
      w.paused
        ? { action: 'skip', kind: w.kind, namespace: w.namespace, name: w.name, detail: 'paused: `kubectl rollout resume` it first' }
        : { action: 'restart', kind: w.kind, namespace: w.namespace, name: w.name },
    ),
    ...inv.pods.map((p): PlannedAction => ({
      action: 'delete',
      kind: 'Pod',
      namespace: p.namespace,
      name: p.name,
      detail: p.controller ? `its ${p.controller.kind} ${p.controller.name} recreates it` : 'no controller: it will not come back',
    })),
  ];
}

function restartSummary(inv: Inventory): string {
  const restarts = inv.workloads.filter((w) => !w.paused).length;
  return `restart ${plural(restarts, 'workload')}, delete ${plural(inv.pods.length, 'pod')}`;
}

function serviceAccountTokens(inv: Inventory): StepPlan {
  const actions: PlannedAction[] = [
    ...inv.tokenSecrets.map((s): PlannedAction => ({ action: 'delete', kind: 'Secret', namespace: s.namespace, name: s.name, detail: `service-account token${s.serviceAccount ? ` of ${s.serviceAccount}` : ''}` })),
    ...restartActions(inv),
  ];
  return {
    step: 'service-account-tokens',
    description: STEP_DESCRIPTIONS['service-account-tokens'],
    summary: `delete ${plural(inv.tokenSecrets.length, 'token Secret')} in ${plural(inv.namespaces.length, 'namespace')}, ${restartSummary(inv)}`,
    actions,
  };
}

function jwtKey(inv: Inventory): StepPlan {
  const base = { step: 'jwt-key' as const, description: STEP_DESCRIPTIONS['jwt-key'] };
  if (!inv.session.present) return { ...base, summary: `no Secret ${SESSION_SECRET_NAME} yet (anonymous mode, or no server has started): nothing to replace`, actions: [] };
  return {
    ...base,
    summary: `replace ${plural(inv.session.keys, 'session key')} with one new key: every session is refused at once`,
    actions: [{ action: 'replace', kind: 'Secret', namespace: inv.meshidNamespace, name: SESSION_SECRET_NAME, detail: 'one new key; the old ones stop verifying' }],
  };
}

function signingKey(inv: Inventory, options: PlanOptions, newSerial: number | undefined): StepPlan {
  const serial = newSerial ?? Math.max(0, ...inv.signingKeys) + 1;
  const old = inv.signingKeys.filter((s) => s !== serial);
  const reissue = options.reissueAdminToken && inv.adminToken;
  const actions: PlannedAction[] = [
    ...(inv.signingKeys.includes(serial) ? [] : [{ action: 'create' as const, kind: 'Secret', namespace: inv.meshidNamespace, name: `${SIGNING_KEY_PREFIX}${serial}`, detail: 'the new signing key' }]),
    ...(reissue ? [{ action: 'reissue' as const, kind: 'Secret', namespace: inv.meshidNamespace, name: ADMIN_TOKEN_SECRET, detail: `admin token signed by key ${serial}` }] : []),
    ...old.map((s): PlannedAction => ({ action: 'remove', kind: 'Secret', namespace: inv.meshidNamespace, name: `${SIGNING_KEY_PREFIX}${s}`, detail: 'every user token it signed is refused' })),
  ];
  const notReissued = inv.adminToken && !options.reissueAdminToken ? `; Secret ${ADMIN_TOKEN_SECRET} is NOT re-issued and stops working` : '';
  return {
    step: 'signing-key',
    description: STEP_DESCRIPTIONS['signing-key'],
    summary: `new key ${serial}${reissue ? ', admin token re-issued' : ''}, ${old.length > 0 ? `key${old.length === 1 ? '' : 's'} ${old.join(', ')} removed` : 'no other key to remove'}${notReissued}`,
    actions,
  };
}

function ca(inv: Inventory, options: PlanOptions, announced: string | undefined): StepPlan {
  const base = { step: 'ca' as const, description: STEP_DESCRIPTIONS.ca };
  const restarts = options.ca.restartWorkloads ? restartActions(inv) : [];
  const publish: PlannedAction = {
    action: 'publish',
    kind: 'ConfigMap',
    name: inv.rootConfigMap,
    detail: 'in every namespace, by the running meshid servers; agents push the new ROOTCA, then new leaves',
  };
  if (inv.ca.mode === 'absent') return { ...base, summary: `no CA in ${inv.meshidNamespace} (no Secret ${CA_SECRET}): nothing to rotate`, actions: [] };
  const timing = `trusted now, signs after ${seconds(options.ca.propagationMs)}, the old roots are dropped ${seconds(options.ca.graceMs)} later`;
  if (inv.ca.mode === 'plugged-in') {
    if (!options.ca.pluggedRoot) {
      return {
        ...base,
        summary: `a plugged-in CA (Secret ${PLUGGED_CA_SECRET}) is in use: new material is needed`,
        actions: [],
        blocked: 'revoke the old CA at its issuer, then pass --cert-chain, --key and --root (and --ca-cert if the signing certificate is not first in the chain)',
      };
    }
    return {
      ...base,
      summary: `plug in the new CA (root sha256:${options.ca.pluggedRoot.slice(0, 16)}…): it signs at once, the roots trusted so far are dropped after ${seconds(options.ca.graceMs)}${options.ca.restartWorkloads ? `; then ${restartSummary(inv)}` : ''}`,
      actions: [{ action: 'plug', kind: 'Secret', namespace: inv.meshidNamespace, name: PLUGGED_CA_SECRET, detail: `new root sha256:${options.ca.pluggedRoot}` }, publish, ...restarts],
    };
  }
  if (announced && inv.ca.bundle.includes(announced)) {
    return {
      ...base,
      summary: `follow the rotation to root sha256:${announced.slice(0, 16)}… that the interrupted run announced, until the old roots are gone${options.ca.restartWorkloads ? `; then ${restartSummary(inv)}` : ''}`,
      actions: [publish, ...restarts],
    };
  }
  const pending = inv.ca.pendingRoot ? ' (the rotation under way is dropped first: its new root sat beside the old key)' : '';
  return {
    ...base,
    summary: `new self-signed root replacing sha256:${(inv.ca.rootFingerprint ?? '').slice(0, 16)}…${pending}: ${timing}${options.ca.restartWorkloads ? `; then ${restartSummary(inv)}` : ''}`,
    actions: [{ action: 'rotate', kind: 'Secret', namespace: inv.meshidNamespace, name: CA_SECRET, detail: timing }, publish, ...restarts],
  };
}

function registry(inv: Inventory): StepPlan {
  const r = inv.registry.reconcile;
  const copies = (r?.copies ?? []).filter((c) => c.action !== 'unchanged');
  const actions: PlannedAction[] = [
    ...inv.registry.entries.map((e): PlannedAction => ({
      action: 'list',
      kind: 'RegistryEntry',
      namespace: inv.registryNamespace,
      name: e.name,
      detail: e.error ?? `${e.servers.map((s) => `${s.server} as ${s.username}`).join(', ')}; stored ${e.updatedAt ?? '?'}`,
    })),
    ...copies.map((c): PlannedAction => ({
      action: c.action === 'created' ? 'create' : c.action === 'deleted' ? 'delete' : c.action === 'conflict' ? 'skip' : 'replace',
      kind: 'Secret',
      namespace: c.namespace,
      name: c.name,
      detail: c.detail ?? 'image pull secret copy',
    })),
    ...(r?.serviceAccounts ?? []).map((sa): PlannedAction => ({
      action: 'update',
      kind: 'ServiceAccount',
      namespace: sa.namespace,
      name: sa.name,
      detail: [sa.added.length > 0 ? `+imagePullSecrets ${sa.added.join(',')}` : '', sa.removed.length > 0 ? `-imagePullSecrets ${sa.removed.join(',')}` : ''].filter(Boolean).join(' '),
    })),
  ];
  return {
    step: 'registry',
    description: STEP_DESCRIPTIONS.registry,
    summary: `${inv.registry.entries.length} registry ${inv.registry.entries.length === 1 ? 'entry' : 'entries'} to re-key by hand; reconcile ${copies.length === 0 && (r?.serviceAccounts.length ?? 0) === 0 ? 'changes nothing' : `changes ${plural(copies.length, 'pull secret')} and ${plural(r?.serviceAccounts.length ?? 0, 'service account')}`}`,
    actions,
  };
}

/** The plan, from an inventory alone: no Kubernetes call, so it is the same in a dry run. */
export function buildPlan(inv: Inventory, options: PlanOptions): RecoveryPlan {
  const journal = resumable(inv.journal, options.steps) ? inv.journal : undefined;
  const done = options.steps.filter((s) => journal?.progress[s]?.completedAt !== undefined);
  const steps = options.steps.map((step): StepPlan => {
    if (done.includes(step)) {
      return { step, description: STEP_DESCRIPTIONS[step], summary: `done by the interrupted recovery at ${journal?.progress[step]?.completedAt ?? '?'}`, actions: [], done: true };
    }
    switch (step) {
      case 'service-account-tokens':
        return serviceAccountTokens(inv);
      case 'jwt-key':
        return jwtKey(inv);
      case 'signing-key':
        return signingKey(inv, options, journal?.progress['signing-key']?.newSerial);
      case 'ca':
        return ca(inv, options, journal?.progress.ca?.newRoot);
      case 'registry':
        return registry(inv);
    }
  });
  return {
    meshidNamespace: inv.meshidNamespace,
    registryNamespace: inv.registryNamespace,
    meshNamespaces: inv.namespaces,
    absentNamespaces: inv.absentNamespaces,
    ...(journal ? { resumes: { id: journal.id, startedAt: journal.startedAt, done } } : {}),
    steps,
  };
}

const where = (a: PlannedAction): string => (a.namespace ? `${a.namespace}/${a.name}` : a.name);

/** The plan for people: numbered steps, then one line per object. */
export function renderPlan(plan: RecoveryPlan, options: { dryRun: boolean }): string {
  const lines = [
    `Recovery plan for meshid in ${plan.meshidNamespace}${options.dryRun ? ' (dry run: nothing will change)' : ''}`,
    `Mesh namespaces: ${plan.meshNamespaces.join(', ') || '(none)'}${plan.absentNamespaces.length > 0 ? ` (absent, skipped: ${plan.absentNamespaces.join(', ')})` : ''}`,
  ];
  if (plan.resumes) lines.push(`Resumes the interrupted recovery ${plan.resumes.id} of ${plan.resumes.startedAt}${plan.resumes.done.length > 0 ? `; done already: ${plan.resumes.done.join(', ')}` : ''}`);
  lines.push('');
  for (const [i, step] of plan.steps.entries()) {
    lines.push(`${i + 1}. ${step.step}: ${step.summary}`);
    if (step.blocked) lines.push(`   BLOCKED: ${step.blocked}`);
    const verbWidth = Math.max(0, ...step.actions.map((a) => a.action.length));
    for (const a of step.actions) lines.push(`   ${a.action.padEnd(verbWidth)}  ${a.kind} ${where(a)}${a.detail ? `  (${a.detail})` : ''}`);
  }
  lines.push('', `${plan.steps.length + 1}. verify: every old credential is refused and every new one works`);
  return `${lines.join('\n')}\n`;
}
