import type { KubeConfig } from '@kubernetes/client-node';
import { describeRoot } from '../ca/index.ts';
import { createLogger, isMeshidError, silentProgress, systemClock, type Clock, type Logger, type Progress } from '../core/index.ts';
import type { RecoveryOptions, ServerProbe, StepContext } from './context.ts';
import { gatherInventory, type Inventory } from './inventory.ts';
import { Journal } from './journal.ts';
import { buildPlan, type RecoveryPlan } from './plan.ts';
import { newStepReport, type CheckResult, type RecoveryReport, type StepReport } from './report.ts';
import { replaceCa } from './step-ca.ts';
import { replaceSessionKey, replaceSigningKeys } from './step-keys.ts';
import { reconcileRegistryStep } from './step-registry.ts';
import { revokeServiceAccountTokens } from './step-tokens.ts';
import type { StepName } from './steps.ts';
import { captureOldCredentials, podsCheck, verifyRecovery } from './verify.ts';

export interface RecoveryDeps {
  progress?: Progress;
  /** The meshid server, for the checks only it can answer; without it they are skipped. */
  probe?: ServerProbe | undefined;
  clock?: Clock;
  log?: Logger;
}

const EXECUTORS: Record<StepName, (ctx: StepContext) => Promise<void>> = {
  'service-account-tokens': revokeServiceAccountTokens,
  'jwt-key': replaceSessionKey,
  'signing-key': replaceSigningKeys,
  ca: replaceCa,
  registry: reconcileRegistryStep,
};

/** Reads what is there and says what recovery would do. Writes nothing. */
export async function planRecovery(kc: KubeConfig, options: RecoveryOptions): Promise<{ plan: RecoveryPlan; inventory: Inventory }> {
  const inventory = await gatherInventory(kc, {
    meshidNamespace: options.meshidNamespace,
    registryNamespace: options.registryNamespace,
    rootConfigMap: options.rootConfigMap,
    scope: options.scope,
    steps: options.steps,
  });
  const plan = buildPlan(inventory, {
    steps: options.steps,
    ca: {
      propagationMs: options.ca.propagationMs,
      graceMs: options.ca.graceMs,
      restartWorkloads: options.ca.restartWorkloads,
      ...(options.ca.plugged ? { pluggedRoot: describeRoot(options.ca.plugged.rootCertPem).fingerprint } : {}),
    },
    reissueAdminToken: options.reissueAdminToken,
  });
  return { plan, inventory };
}

/**
 * Carries out the steps in order, each recorded in the journal when done, then one
 * verification pass. A failed step stops the run (the later steps depend on the earlier
 * ones being done); running again resumes from it.
 */
export async function runRecovery(kc: KubeConfig, options: RecoveryOptions, inventory: Inventory, deps: RecoveryDeps = {}): Promise<RecoveryReport> {
  const clock = deps.clock ?? systemClock;
  const progress = deps.progress ?? silentProgress;
  const log = deps.log ?? createLogger('meshid-recover', 'silent');
  const started = clock.now();
  const { journal, resumed } = await Journal.open(kc, options.meshidNamespace, options.steps, new Date(started));
  const pending = options.steps.filter((s) => !journal.done(s));
  const captured = await captureOldCredentials(kc, options, inventory.namespaces, journal, pending);
  const steps: StepReport[] = [];
  const extraChecks: CheckResult[] = [];
  let failed = false;
  for (const [i, step] of options.steps.entries()) {
    const report = newStepReport(step);
    steps.push(report);
    if (failed) continue;
    if (journal.done(step)) {
      report.status = 'already-done';
      report.notes.push(`done at ${journal.record(step)?.completedAt ?? '?'} by the interrupted run this one resumes`);
      progress.succeed(`[${i + 1}/${options.steps.length}] ${step}: already done`);
      continue;
    }
    const ctx: StepContext = { kc, options, inventory, journal, progress, clock, log, probe: deps.probe, captured, report };
    const t0 = Date.now();
    progress.start(`[${i + 1}/${options.steps.length}] ${step}`);
    try {
      if (!journal.record(step)) await journal.update(step, { startedAt: new Date(clock.now()).toISOString() });
      await EXECUTORS[step](ctx);
      if (report.status === 'not-run') report.status = 'done';
      report.durationMs = Date.now() - t0;
      await journal.update(step, { completedAt: new Date(clock.now()).toISOString(), durationMs: report.durationMs });
      const pods = podsCheck(ctx);
      if (pods) extraChecks.push(pods);
      progress.succeed(`[${i + 1}/${options.steps.length}] ${step}: ${report.status}, ${report.objects.length} object${report.objects.length === 1 ? '' : 's'} in ${(report.durationMs / 1000).toFixed(1)} s${report.warnings.length > 0 ? ` (${report.warnings.length} warning${report.warnings.length === 1 ? '' : 's'})` : ''}`);
    } catch (error) {
      failed = true;
      report.status = 'failed';
      report.durationMs = Date.now() - t0;
      report.error = isMeshidError(error)
        ? { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) }
        : { code: 'ERR_RECOVERY_FAILED', message: error instanceof Error ? error.message : String(error) };
      progress.fail(`[${i + 1}/${options.steps.length}] ${step}: ${report.error.message}`);
    }
  }

  const verifyStarted = Date.now();
  let checks: CheckResult[] = [];
  if (!failed) {
    progress.start('verify');
    checks = [...extraChecks, ...(await verifyRecovery({ kc, options, namespaces: inventory.namespaces, journal, probe: deps.probe, captured }, options.steps, (t) => progress.update(t)))];
    const bad = checks.filter((c) => c.status === 'failed').length;
    if (bad > 0) progress.fail(`verify: ${bad} of ${checks.length} checks failed`);
    else progress.succeed(`verify: ${checks.filter((c) => c.status === 'passed').length} passed, ${checks.filter((c) => c.status !== 'passed').length} skipped or warned`);
    await journal.finish(new Date(clock.now()));
  }
  const finished = clock.now();
  return {
    id: journal.state.id,
    resumed,
    meshidNamespace: options.meshidNamespace,
    meshNamespaces: inventory.namespaces,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    steps,
    verification: { durationMs: Date.now() - verifyStarted, checks },
    ok: !failed && !checks.some((c) => c.status === 'failed'),
  };
}
