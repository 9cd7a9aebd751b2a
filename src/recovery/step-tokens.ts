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

/**
 * Rollout restarts of every Deployment, DaemonSet and StatefulSet, deletion of every other
 * pod, then a bounded wait: what is not back by then is reported, not waited on forever.
 * What runs is listed afresh, since a resumed run may find things changed.
 */
export async function restartMeshWorkloads(ctx: StepContext, label: string): Promise<void> {
  const workloads: Workload[] = [];
  const pods: PodRef[] = [];
  for (const namespace of ctx.inventory.namespaces) {
    const found = await listWorkloads(ctx.kc, namespace);
    workloads.push(...found.workloads);
    pods.push(...found.pods);
  }
  const now = new Date(ctx.clock.now());
  const restarted: { workload: Workload; generation: number }[] = [];
  for (const [i, workload] of workloads.entries()) {
    ctx.progress.update(`${label}: restarting workloads ${bar(i, workloads.length)} ${workload.kind} ${workload.namespace}/${workload.name}`);
    if (workload.paused) {
      ctx.report.warnings.push(`${workload.kind} ${workload.namespace}/${workload.name} is paused and was not restarted: \`kubectl rollout resume\` it, then restart it`);
      continue;
    }
    restarted.push({ workload, generation: await restartWorkload(ctx.kc, workload, now) });
    ctx.report.objects.push({ action: 'restart', kind: workload.kind, namespace: workload.namespace, name: workload.name });
  }
  for (const [i, pod] of pods.entries()) {
    ctx.progress.update(`${label}: deleting pods ${bar(i, pods.length)} ${pod.namespace}/${pod.name}`);
    await deletePod(ctx.kc, pod);
    ctx.report.objects.push({ action: 'delete', kind: 'Pod', namespace: pod.namespace, name: pod.name, detail: pod.controller ? `recreated by its ${pod.controller.kind} ${pod.controller.name}` : 'no controller' });
    if (!pod.controller) ctx.report.warnings.push(`Pod ${pod.namespace}/${pod.name} had no controller and does not come back: recreate it from its manifest`);
  }

  // What has come back, like `kubectl rollout status`, until every one has or time runs out.
  const pending = new Map(restarted.map((r) => [`${r.workload.kind} ${r.workload.namespace}/${r.workload.name}`, { ...r, detail: '' }]));
  const owned = new Map(pods.filter((p) => p.controller).map((p) => [`Pod ${p.namespace}/${p.name}`, p]));
  const total = pending.size + owned.size;
  await until(ctx.options.rolloutTimeoutMs, async () => {
    for (const [key, entry] of pending) {
      const state = await readRollout(ctx.kc, entry.workload, entry.generation);
      if (state.done) pending.delete(key);
      else entry.detail = state.detail;
    }
    for (const [key, pod] of owned) if (await replacementReady(ctx.kc, pod)) owned.delete(key);
    ctx.progress.update(`${label}: waiting for pods to come back ${bar(total - pending.size - owned.size, total)}`);
    return pending.size === 0 && owned.size === 0;
  }, 500);
  const waited = `${Math.round(ctx.options.rolloutTimeoutMs / 1000)} s`;
  for (const [key, entry] of pending) ctx.report.warnings.push(`${key} is not back after ${waited}: ${entry.detail}`);
  for (const key of owned.keys()) ctx.report.warnings.push(`${key} has no ready replacement after ${waited}`);
}
