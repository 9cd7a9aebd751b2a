import { CoreV1Api } from '@kubernetes/client-node';
import { CA_SECRET, PLUGGED_CA_SECRET, ROOT_CONFIGMAP_KEY, caStatus, describeRoot, parseCaSecret, plugCa, rotateCa, splitPem, type CaStatus } from '../ca/index.ts';
import { MeshidError } from '../core/index.ts';
import { SecretClient, decodeSecret, isNotFound } from '../kube/index.ts';
import type { StepContext } from './context.ts';
import { until } from './context.ts';
import { restartMeshWorkloads } from './step-tokens.ts';

/** The CA's use cases audit nothing here: the recovery run is recorded as one event (RecoveryRun). */
const RECOVERY_AUDITS_ITS_RUN = undefined;

/** Slack on top of propagation + grace for the servers' timers and watches. */
const CA_SLACK_MS = 30_000;

/** Done: the new root signs, it alone is trusted, and no rotation step is pending. */
export function rotationComplete(status: CaStatus, newRoot: string): boolean {
  return status.rootFingerprint === newRoot && status.trustBundle.length === 1 && status.trustBundle[0]?.fingerprint === newRoot && status.rotation === undefined;
}

/** Fingerprints of the roots a namespace's published trust bundle holds. */
export async function publishedRoots(ctx: Pick<StepContext, 'kc' | 'options'>, namespace: string): Promise<string[] | undefined> {
  const cm = await ctx.kc
    .makeApiClient(CoreV1Api)
    .readNamespacedConfigMap({ namespace, name: ctx.options.rootConfigMap })
    .catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
  const pem = cm?.data?.[ROOT_CONFIGMAP_KEY];
  return pem === undefined ? undefined : splitPem(pem).map((p) => describeRoot(p).fingerprint);
}

/**
 * Step `ca`. A self-signed root is rotated the way `meshid ca rotate` does it, with short
 * times: the new root joins the bundle now, signs after the propagation delay (agents have
 * fetched it by then and renew every leaf when the signing root changes), and the old roots
 * leave the bundle after the grace period. A pending rotation that this recovery did not
 * start is dropped first: its new root sat in the same Secret, so it is as suspect as the
 * old one. A plugged-in CA takes the new material from the flags.
 */
export async function replaceCa(ctx: StepContext): Promise<void> {
  const ns = ctx.options.meshidNamespace;
  const secrets = new SecretClient(ctx.kc);
  const current = await secrets.read(ns, CA_SECRET);
  if (!current) {
    ctx.report.status = 'skipped';
    ctx.report.notes.push(`There is no CA in ${ns} (no Secret ${CA_SECRET}): nothing to rotate.`);
    return;
  }
  const plugged = await secrets.read(ns, PLUGGED_CA_SECRET);
  let newRoot = ctx.journal.record('ca')?.newRoot;
  const stored = parseCaSecret(decodeSecret(current));
  const fingerprints = [stored.caCert, stored.next?.cert].filter((p): p is string => p !== undefined).map((p) => describeRoot(p).fingerprint);

  if (plugged || ctx.options.ca.plugged) {
    const material = ctx.options.ca.plugged;
    if (!material) {
      throw new MeshidError('ERR_INVALID_ARGUMENT', `a plugged-in CA (Secret ${ns}/${PLUGGED_CA_SECRET}) is in use, and meshid does not hold its root's key`, {
        hint: 'Revoke the old CA at its issuer, make new material, and pass it: --cert-chain cert-chain.pem --key ca-key.pem --root root-cert.pem.',
      });
    }
    const wanted = describeRoot(material.rootCertPem).fingerprint;
    const pluggedRoot = plugged ? decodeSecret(plugged)['root-cert.pem'] : undefined;
    if (!(newRoot === wanted && pluggedRoot && describeRoot(pluggedRoot).fingerprint === wanted)) {
      ctx.progress.update('ca: plugging in the new CA');
      newRoot = (await plugCa(ctx.kc, ns, { ...material, graceMs: ctx.options.ca.graceMs, clock: ctx.clock, audit: RECOVERY_AUDITS_ITS_RUN })).rootFingerprint;
      await ctx.journal.update('ca', { newRoot });
      ctx.report.objects.push({ action: 'plug', kind: 'Secret', namespace: ns, name: PLUGGED_CA_SECRET, detail: `root sha256:${newRoot}` });
    }
  } else if (newRoot === undefined || !fingerprints.includes(newRoot)) {
    ctx.progress.update('ca: announcing a new root');
    const { propagationMs, graceMs } = ctx.options.ca;
    const rotated = await rotateCa(ctx.kc, ns, { propagationMs, graceMs, replacePending: true, clock: ctx.clock, audit: RECOVERY_AUDITS_ITS_RUN });
    if (rotated.dropped) ctx.report.warnings.push(`a pending rotation to root sha256:${rotated.dropped.slice(0, 16)}… was dropped: its key was in the same Secret`);
    newRoot = rotated.newRoot;
    await ctx.journal.update('ca', { newRoot });
    ctx.report.objects.push({ action: 'rotate', kind: 'Secret', namespace: ns, name: CA_SECRET, detail: `new root sha256:${newRoot}` });
  }
  const target = newRoot ?? '';

  // The running servers carry the rotation out; follow it until the old roots are gone.
  const limit = ctx.options.ca.propagationMs + ctx.options.ca.graceMs + CA_SLACK_MS;
  const started = Date.now();
  const finished = await until(limit, async () => {
    const status = await caStatus(ctx.kc, ns);
    const phase = status.rootFingerprint === target ? 'the new root signs; dropping the old roots' : 'the new root is trusted; it signs soon';
    ctx.progress.update(`ca: ${phase} (${Math.round((Date.now() - started) / 1000)} s)`);
    return rotationComplete(status, target);
  });
  if (!finished) {
    throw new MeshidError('ERR_RECOVERY_FAILED', `the CA rotation in ${ns} did not finish within ${Math.round(limit / 1000)} s`, {
      hint: `The meshid servers with the CA enabled carry it out: check that one runs in ${ns} (\`meshid ca status -n ${ns}\`), then run recover again.`,
    });
  }
  ctx.report.objects.push({ action: 'publish', kind: 'ConfigMap', name: ctx.options.rootConfigMap, detail: `trust bundle = root sha256:${target} only` });

  // Agents read the bundle in their own namespace: wait (bounded) until every copy is new.
  const lagging = new Set(ctx.inventory.namespaces);
  await until(15_000, async () => {
    for (const namespace of lagging) {
      const roots = await publishedRoots(ctx, namespace);
      if (roots === undefined || (roots.length === 1 && roots[0] === target)) lagging.delete(namespace);
    }
    ctx.progress.update(`ca: waiting for ${ctx.options.rootConfigMap} in ${lagging.size} namespace${lagging.size === 1 ? '' : 's'}`);
    return lagging.size === 0;
  });
  if (lagging.size > 0) ctx.report.warnings.push(`${ctx.options.rootConfigMap} still holds old roots in ${[...lagging].join(', ')}`);
  if (ctx.options.ca.restartWorkloads) await restartMeshWorkloads(ctx, 'ca');
  else ctx.report.notes.push('Workloads that get certificates over SDS have new roots and leaves without a restart; restart any that read the root another way (`meshid recover ca --restart-workloads`).');
}
