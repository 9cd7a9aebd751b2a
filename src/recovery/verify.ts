import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CA_SECRET, caStatus } from '../ca/index.ts';
import { createLogger, isMeshidError } from '../core/index.ts';
import { ADMIN_TOKEN_SECRET, KubeSigningKeys, adminTokenKid } from '../tokens/index.ts';
import { reconcileChanges, reconcileRegistries } from '../registry/index.ts';
import type { Captured, RecoveryOptions, ServerProbe, StepContext } from './context.ts';
import { until } from './context.ts';
import { TOKEN_TYPE_SELECTOR, readCa, tokenSecrets } from './inventory.ts';
import type { Journal } from './journal.ts';
import type { CheckResult, CheckStatus } from './report.ts';
import { rotationComplete, publishedRoots } from './step-ca.ts';
import { probeSession, probeUserToken, readSessionKeys } from './step-keys.ts';
import type { StepName } from './steps.ts';

/** Reads every old credential the steps about to run will revoke, before they do. */
export async function captureOldCredentials(kc: KubeConfig, options: RecoveryOptions, namespaces: string[], journal: Journal, steps: StepName[]): Promise<Captured> {
  const captured: Captured = { serviceAccountTokens: [], sessionKeys: [], signingKeys: [], caRoots: [] };
  if (steps.includes('service-account-tokens')) {
    for (const namespace of namespaces) {
      for (const { ref, token } of await tokenSecrets(kc, namespace)) if (token) captured.serviceAccountTokens.push({ namespace, name: ref.name, token });
    }
  }
  if (steps.includes('jwt-key')) captured.sessionKeys = (await readSessionKeys({ kc, options })) ?? [];
  if (steps.includes('signing-key')) {
    const keys = new KubeSigningKeys(kc, options.meshidNamespace, createLogger('meshid', 'silent'));
    const keep = journal.record('signing-key')?.newSerial;
    for (const { serial } of await keys.listStored()) {
      if (serial === keep) continue;
      const pem = await keys.exportKey(serial).catch(() => undefined);
      if (pem) captured.signingKeys.push({ serial, pem });
    }
  }
  if (steps.includes('ca')) {
    const ca = await readCa(kc, options.meshidNamespace);
    const keep = journal.record('ca')?.newRoot;
    captured.caRoots = ca.bundle.filter((r) => r !== keep);
  }
  return captured;
}

interface VerifyContext {
  kc: KubeConfig;
  options: RecoveryOptions;
  namespaces: string[];
  journal: Journal;
  probe: ServerProbe | undefined;
  captured: Captured;
}

type Check = () => Promise<{ status: CheckStatus; detail: string }>;

const MAX_TOKEN_PROBES = 20;

/** Whether the apiserver still accepts a token (its token cache keeps answers ~10 s). */
async function accepted(kc: KubeConfig, token: string): Promise<boolean> {
  const review = await kc.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } });
  return review.status?.authenticated === true;
}

/** A server check: waits for the expected status, since the servers learn of changes by watch. */
async function serverAnswers(probe: ServerProbe | undefined, timeoutMs: number, token: () => Promise<string>, want: (status: number) => boolean): Promise<{ status: CheckStatus; detail: string }> {
  if (!probe) return { status: 'skipped', detail: 'no meshid server to ask: pass --url' };
  const t = await token();
  let last = 0;
  let failure: string | undefined;
  const ok = await until(timeoutMs, async () => {
    try {
      last = await probe.whoami(t);
      failure = undefined;
    } catch (error) {
      failure = (error as Error).message;
      return false;
    }
    return want(last);
  });
  if (failure !== undefined && !ok) return { status: 'skipped', detail: `the server at ${probe.describe} did not answer: ${failure}` };
  return { status: ok ? 'passed' : 'failed', detail: `${probe.describe} answered ${last}` };
}

function checksFor(step: StepName, v: VerifyContext): [string, Check][] {
  const ns = v.options.meshidNamespace;
  const timeout = v.options.verifyTimeoutMs;
  switch (step) {
    case 'service-account-tokens':
      return [
        [
          'no service-account token Secret is left in the mesh namespaces',
          async () => {
            const left: string[] = [];
            for (const namespace of v.namespaces) left.push(...(await tokenSecrets(v.kc, namespace)).map((t) => `${namespace}/${t.ref.name}`));
            return left.length === 0 ? { status: 'passed', detail: `none in ${v.namespaces.length} namespaces (field selector ${TOKEN_TYPE_SELECTOR})` } : { status: 'failed', detail: `still there: ${left.join(', ')}` };
          },
        ],
        [
          'the deleted tokens are refused by the apiserver',
          async () => {
            const tokens = v.captured.serviceAccountTokens.slice(0, MAX_TOKEN_PROBES);
            if (tokens.length === 0) return { status: 'skipped', detail: 'no token was read before deletion (none existed, or an interrupted run deleted them)' };
            const stillAccepted = new Set(tokens);
            await until(timeout, async () => {
              for (const t of stillAccepted) if (!(await accepted(v.kc, t.token))) stillAccepted.delete(t);
              return stillAccepted.size === 0;
            }, 1000);
            return stillAccepted.size === 0
              ? { status: 'passed', detail: `${tokens.length} refused (TokenReview)` }
              : { status: 'failed', detail: `still accepted: ${[...stillAccepted].map((t) => `${t.namespace}/${t.name}`).join(', ')}` };
          },
        ],
      ];
    case 'jwt-key':
      return [
        [
          'the session key Secret holds no old key',
          async () => {
            const now = await readSessionKeys(v);
            if (!now) return { status: 'skipped', detail: 'there is no session key Secret' };
            const old = new Set(v.captured.sessionKeys.map((k) => k.kid));
            const kept = now.filter((k) => old.has(k.kid));
            return kept.length === 0 ? { status: 'passed', detail: `${now.length} key, none of the ${old.size} old` } : { status: 'failed', detail: `old keys still there: ${kept.map((k) => k.kid).join(', ')}` };
          },
        ],
        [
          'a session signed with an old key is refused',
          async () => {
            const key = v.captured.sessionKeys[0];
            if (!key) return { status: 'skipped', detail: 'no old key was read before the change' };
            return serverAnswers(v.probe, timeout, () => probeSession(key), (s) => s === 401);
          },
        ],
        [
          'a session signed with the new key is accepted',
          async () => {
            const key = (await readSessionKeys(v))?.[0];
            if (!key) return { status: 'skipped', detail: 'there is no session key Secret' };
            return serverAnswers(v.probe, timeout, () => probeSession(key), (s) => s === 200);
          },
        ],
      ];
    case 'signing-key': {
      const serial = v.journal.record('signing-key')?.newSerial;
      const keys = new KubeSigningKeys(v.kc, ns, createLogger('meshid', 'silent'));
      return [
        [
          'only the new signing key is left',
          async () => {
            const stored = (await keys.listStored()).map((k) => k.serial);
            return stored.length === 1 && stored[0] === serial ? { status: 'passed', detail: `key ${serial}` } : { status: 'failed', detail: `keys ${stored.join(', ') || '(none)'}; expected only ${String(serial)}` };
          },
        ],
        [
          'the admin token is signed by the new key',
          async () => {
            const admin = await adminTokenKid(v.kc, ns);
            if (!admin) return { status: 'skipped', detail: `there is no Secret ${ADMIN_TOKEN_SECRET}` };
            const { kid } = admin;
            if (kid === String(serial)) return { status: 'passed', detail: `kid ${kid}` };
            return { status: v.options.reissueAdminToken ? 'failed' : 'warning', detail: `kid ${kid ?? '?'}: it is refused now` };
          },
        ],
        [
          'a user token signed by an old key is refused',
          async () => {
            const old = v.captured.signingKeys.at(-1);
            if (!old) return { status: 'skipped', detail: 'no old key was read before the change' };
            return serverAnswers(v.probe, timeout, async () => probeUserToken(old.serial, old.pem), (s) => s === 401);
          },
        ],
        [
          'a user token signed by the new key is accepted',
          async () => {
            if (serial === undefined) return { status: 'failed', detail: 'no new key was recorded' };
            const pem = await keys.exportKey(serial);
            return serverAnswers(v.probe, timeout, async () => probeUserToken(serial, pem), (s) => s === 200);
          },
        ],
      ];
    }
    case 'ca': {
      const newRoot = v.journal.record('ca')?.newRoot;
      return [
        [
          'the new root alone signs and is trusted',
          async () => {
            if (!newRoot) return { status: 'skipped', detail: `there was no CA to rotate (no Secret ${CA_SECRET})` };
            const status = await caStatus(v.kc, ns).catch((e: unknown) => {
              if (isMeshidError(e)) return undefined;
              throw e;
            });
            if (!status) return { status: 'failed', detail: `Secret ${CA_SECRET} is gone` };
            return rotationComplete(status, newRoot)
              ? { status: 'passed', detail: `root sha256:${newRoot.slice(0, 16)}…; ${v.captured.caRoots.length} old root${v.captured.caRoots.length === 1 ? '' : 's'} dropped` }
              : { status: 'failed', detail: `signing root sha256:${status.rootFingerprint.slice(0, 16)}…, ${status.trustBundle.length} roots trusted` };
          },
        ],
        [
          `${v.options.rootConfigMap} holds only the new root in every mesh namespace`,
          async () => {
            if (!newRoot) return { status: 'skipped', detail: 'there was no CA to rotate' };
            const wrong = new Map<string, string>();
            await until(timeout, async () => {
              wrong.clear();
              for (const namespace of v.namespaces) {
                const roots = await publishedRoots(v, namespace);
                if (roots === undefined) wrong.set(namespace, 'missing');
                else if (roots.some((r) => v.captured.caRoots.includes(r))) wrong.set(namespace, 'an old root is still trusted');
                else if (!(roots.length === 1 && roots[0] === newRoot)) wrong.set(namespace, `${roots.length} roots, not the new one alone`);
              }
              return wrong.size === 0;
            }, 500);
            return wrong.size === 0 ? { status: 'passed', detail: `${v.namespaces.length} namespaces` } : { status: 'failed', detail: [...wrong].map(([n, why]) => `${n}: ${why}`).join('; ') };
          },
        ],
      ];
    }
    case 'registry':
      return [
        [
          'the pull secrets in the mesh namespaces match the registry entries',
          async () => {
            const drift = await reconcileRegistries(v.kc, { registryNamespace: v.options.registryNamespace, namespaces: v.namespaces, dryRun: true });
            const n = reconcileChanges(drift);
            const conflicts = drift.copies.filter((c) => c.action === 'conflict');
            if (n > 0) return { status: 'failed', detail: `${n} differences left` };
            if (conflicts.length > 0) return { status: 'warning', detail: `left alone (not meshid's): ${conflicts.map((c) => `${c.namespace}/${c.name}`).join(', ')}` };
            return { status: 'passed', detail: `${drift.entries.length} entries in ${drift.namespaces.length} namespaces` };
          },
        ],
      ];
  }
}

/** One verification pass over the steps: old credentials refused, new ones working. */
export async function verifyRecovery(v: VerifyContext, steps: StepName[], onProgress: (text: string) => void): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const step of steps) {
    for (const [name, check] of checksFor(step, v)) {
      onProgress(`verify: ${step}: ${name}`);
      const started = Date.now();
      let outcome: { status: CheckStatus; detail: string };
      try {
        outcome = await check();
      } catch (error) {
        outcome = { status: 'failed', detail: `the check itself failed: ${(error as Error).message}` };
      }
      results.push({ step, check: name, ...outcome, durationMs: Date.now() - started });
    }
  }
  return results;
}

/** For the workloads-back check of a step's warnings. */
export function podsCheck(ctx: Pick<StepContext, 'report'>): CheckResult | undefined {
  const notBack = ctx.report.warnings.filter((w) => /not back|no ready replacement|does not come back/.test(w));
  if (!ctx.report.objects.some((o) => o.action === 'restart' || (o.action === 'delete' && o.kind === 'Pod'))) return undefined;
  return {
    step: ctx.report.step,
    check: 'restarted pods came back',
    status: notBack.length === 0 ? 'passed' : 'warning',
    detail: notBack.length === 0 ? 'every restarted workload is back' : `${notBack.length} not back (see the step's warnings)`,
    durationMs: 0,
  };
}
