import { CoreV1Api } from '@kubernetes/client-node';
import { bar } from '../core/index.ts';
import type { StepContext } from './context.ts';
import { until } from './context.ts';
import { TOKEN_TYPE_SELECTOR, tokenSecrets } from './inventory.ts';
import { deletePod, listWorkloads, readRollout, replacementReady, restartWorkload, type PodRef, type Workload } from './workloads.ts';

/**
 * Step `service-account-tokens`: in every mesh namespace, delete the Secrets of type
 * kubernetes.io/service-account-token with one field-selected delete, then restart the
 * workloads, whose pod-bound tokens die with their pods.
 */
export async function revokeServiceAccountTokens(ctx: StepContext): Promise<void> {
  const core = ctx.kc.makeApiClient(CoreV1Api);
  for (const [i, namespace] of ctx.inventory.namespaces.entries()) {
    ctx.progress.update(`service-account-tokens: deleting token Secrets ${bar(i, ctx.inventory.namespaces.length)} ${namespace}`);
    const listed = await tokenSecrets(ctx.kc, namespace);
    if (listed.length === 0) continue;
    await core.deleteCollectionNamespacedSecret({ namespace, fieldSelector: TOKEN_TYPE_SELECTOR });
    for (const { ref } of listed) {
      ctx.report.objects.push({ action: 'delete', kind: 'Secret', namespace, name: ref.name, detail: `service-account token${ref.serviceAccount ? ` of ${ref.serviceAccount}` : ''}` });
    }
  }
  await restartMeshWorkloads(ctx, 'service-account-tokens');
}

/** A group of workloads restarted together, and waited for before the next group starts. */
export interface RestartWave {
  /** For progress and warnings: "meshid's own pods", "the mesh workloads". */
  name: string;
  workloads: Workload[];
  pods: PodRef[];
}

/**
 * meshid's own namespace first, then the rest. The mesh workloads get their certificates
 * from the agent, and the agent from the CA in the servers: restarted all at once, a workload
 * would start while its agent is gone, fail its first SDS request and crash-loop, backing off
 * for longer each time. So the servers (which keep one replica serving while they roll) and
 * the agent are restarted and waited for, and only then the workloads that depend on them.
 */
export function restartWaves(meshidNamespace: string, workloads: Workload[], pods: PodRef[]): RestartWave[] {
  const own = (x: { namespace: string }): boolean => x.namespace === meshidNamespace;
  const waves: RestartWave[] = [
    { name: "meshid's own pods", workloads: workloads.filter(own), pods: pods.filter(own) },
    { name: 'the mesh workloads', workloads: workloads.filter((w) => !own(w)), pods: pods.filter((p) => !own(p)) },
  ];
  return waves.filter((w) => w.workloads.length + w.pods.length > 0);
}

/**
 * Rollout restarts of every Deployment, DaemonSet and StatefulSet, deletion of every other
 * pod, in waves (see restartWaves), each followed by a bounded wait: what is not back by then
 * is reported, not waited on forever. What runs is listed afresh, since a resumed run may find
 * things changed.
 */
export async function restartMeshWorkloads(ctx: StepContext, label: string): Promise<void> {
  const workloads: Workload[] = [];
  const pods: PodRef[] = [];
  for (const namespace of ctx.inventory.namespaces) {
    const found = await listWorkloads(ctx.kc, namespace);
    workloads.push(...found.workloads);
    pods.push(...found.pods);
  }
  // Each wave ends with a line of its own (✔ back and Ready, ✖ not all back), so a log
  // without a terminal shows the wait too; the step's own line follows the last one.
  const waves = restartWaves(ctx.options.meshidNamespace, workloads, pods);
  for (const [i, wave] of waves.entries()) {
    await restartWave(ctx, label, wave);
    const next = waves[i + 1];
    ctx.progress.start(next ? `${label}: restarting ${next.name}` : label);
  }
}

async function restartWave(ctx: StepContext, label: string, wave: RestartWave): Promise<void> {
  const { workloads, pods } = wave;
  const now = new Date(ctx.clock.now());
  const restarted: { workload: Workload; generation: number }[] = [];
  for (const [i, workload] of workloads.entries()) {
    ctx.progress.update(`${label}: restarting ${wave.name} ${bar(i, workloads.length)} ${workload.kind} ${workload.namespace}/${workload.name}`);
    if (workload.paused) {
      ctx.report.warnings.push(`${workload.kind} ${workload.namespace}/${workload.name} is paused and was not restarted: \`kubectl rollout resume\` it, then restart it`);
      continue;
    }
    restarted.push({ workload, generation: await restartWorkload(ctx.kc, workload, now) });
    ctx.report.objects.push({ action: 'restart', kind: workload.kind, namespace: workload.namespace, name: workload.name });
  }
  for (const [i, pod] of pods.entries()) {
    ctx.progress.update(`${label}: deleting pods of ${wave.name} ${bar(i, pods.length)} ${pod.namespace}/${pod.name}`);
    await deletePod(ctx.kc, pod);
    ctx.report.objects.push({ action: 'delete', kind: 'Pod', namespace: pod.namespace, name: pod.name, detail: pod.controller ? `recreated by its ${pod.controller.kind} ${pod.controller.name}` : 'no controller' });
    if (!pod.controller) ctx.report.warnings.push(`Pod ${pod.namespace}/${pod.name} had no controller and does not come back: recreate it from its manifest`);
  }

  // What has come back, like `kubectl rollout status`, until every one has or time runs out.
  const pending = new Map(restarted.map((r) => [`${r.workload.kind} ${r.workload.namespace}/${r.workload.name}`, { ...r, detail: '' }]));
  const owned = new Map(pods.filter((p) => p.controller).map((p) => [`Pod ${p.namespace}/${p.name}`, p]));
  const total = pending.size + owned.size;
  const started = Date.now();
  await until(ctx.options.rolloutTimeoutMs, async () => {
    for (const [key, entry] of pending) {
      const state = await readRollout(ctx.kc, entry.workload, entry.generation);
      if (state.done) pending.delete(key);
      else entry.detail = state.detail;
    }
    for (const [key, pod] of owned) if (await replacementReady(ctx.kc, pod)) owned.delete(key);
    const waiting = [...pending].map(([key, e]) => `${key}${e.detail ? ` (${e.detail})` : ''}`).concat([...owned.keys()]);
    ctx.progress.update(`${label}: waiting for ${wave.name} to be Ready ${bar(total - waiting.length, total)} ${Math.round((Date.now() - started) / 1000)} s${waiting.length > 0 ? `: ${waiting[0] ?? ''}${waiting.length > 1 ? ` and ${waiting.length - 1} more` : ''}` : ''}`);
    return pending.size === 0 && owned.size === 0;
  }, 500);
  const waited = `${Math.round(ctx.options.rolloutTimeoutMs / 1000)} s`;
  for (const [key, entry] of pending) ctx.report.warnings.push(`${key} is not back after ${waited}: ${entry.detail}`);
  for (const key of owned.keys()) ctx.report.warnings.push(`${key} has no ready replacement after ${waited}`);
  const took = `${Math.round((Date.now() - started) / 1000)} s`;
  const notBack = pending.size + owned.size;
  if (notBack === 0) ctx.progress.succeed(`${label}: ${wave.name} are back and Ready: ${plural(total, 'workload or pod', 'workloads or pods')} in ${took}`);
  else ctx.progress.fail(`${label}: ${wave.name}: ${notBack} of ${total} not back after ${waited} (see the warnings)`);
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
