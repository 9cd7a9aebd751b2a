import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { JOURNAL_CONFIGMAP, parseJournal, type RecoveryPlan, type RecoveryReport } from '../../src/recovery/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { createWorkloads, fingerprint, legacyTokenSecret, publishedRoots, runInTerminal, snapshot, spawnCli, tokenAccepted, waitForDefaultAccount, workloadsSettled } from './support.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);

const NS = 'rec-resume';
const ROOTS = 'rec-resume-root-cert';
const APP = 'rec-resume-app';
const MESH = [NS, APP];

const journal = async () => parseJournal((await core.readNamespacedConfigMap({ namespace: NS, name: JOURNAL_CONFIGMAP }).catch(() => undefined))?.data?.['recovery.json']);

describe('meshid recover: dry run, confirmation, and an interrupted run resumed', () => {
  let t: TestServer;
  let recover: (...extra: string[]) => string[];
  let token = '';

  before(async () => {
    t = await startTestServer(NS, { ca: { enabled: true, port: 0, keyType: 'ec', rootConfigMap: ROOTS } });
    recover = (...extra) => [
      '--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'recover', 'all',
      '--mesh-namespaces', MESH.join(','), '--registry-namespace', 'rec-resume-registry', '--root-configmap', ROOTS,
      '--ca-propagation', '4s', '--ca-grace', '1s', '--rollout-timeout', '3s', '--url', t.server.httpUrl, ...extra,
    ];
    await core.createNamespace({ body: { metadata: { name: APP } } });
    await waitForDefaultAccount(core, APP);
    token = await legacyTokenSecret(core, APP, 'legacy-token');
    await createWorkloads(admin, APP);
    await workloadsSettled(admin, APP);
    // The CA publishes its root into every namespace; wait for it, so no later snapshot catches it arriving.
    for (const ns of MESH) assert.notEqual(await within(15_000, async () => (await publishedRoots(core, ns, ROOTS)).length === 1), undefined, `the CA publishes its root in ${ns}`);
  });
  after(async () => {
    await t?.close();
    await core.deleteNamespace({ name: APP }).catch(() => undefined);
  });

  it('--dry-run prints the plan (text and JSON) and changes nothing', async () => {
    const before = await snapshot(admin, MESH, [ROOTS, JOURNAL_CONFIGMAP]);
    const text = await runCli(recover('--dry-run'), { timeoutMs: 60_000 });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /dry run: nothing will change/);
    assert.match(text.stdout, /delete +Secret rec-resume-app\/legacy-token/);
    assert.match(text.stdout, /rotate +Secret rec-resume\/istio-ca-secret/);
    const json = await runCli(recover('--dry-run', '-o', 'json'), { timeoutMs: 60_000 });
    assert.equal(json.code, 0, json.stderr);
    const plan = JSON.parse(json.stdout) as RecoveryPlan;
    assert.deepEqual(plan.steps.map((s) => s.step), ['service-account-tokens', 'jwt-key', 'signing-key', 'ca', 'registry']);
    assert.deepEqual(plan.meshNamespaces, MESH);
    assert.deepEqual(await snapshot(admin, MESH, [ROOTS, JOURNAL_CONFIGMAP]), before, 'not one object was created, changed or deleted');
    assert.equal(await journal(), undefined, 'no journal either');
    assert.equal(await tokenAccepted(admin, token), true);
  });

  it('without --yes and without a terminal, prints the plan and exits non-zero, changing nothing', async () => {
    const before = await snapshot(admin, MESH, [ROOTS, JOURNAL_CONFIGMAP]);
    const res = await runCli(recover(), { timeoutMs: 60_000 });
    assert.equal(res.code, 1);
    assert.match(res.stdout, /^1\. service-account-tokens: /m, 'the plan is shown');
    assert.match(res.stderr, /\[ERR_CONFIRMATION_REQUIRED\]/);
    assert.match(res.stderr, /hint: .*--yes/);
    assert.deepEqual(await snapshot(admin, MESH, [ROOTS, JOURNAL_CONFIGMAP]), before);
  });

  it('refuses bad arguments before touching anything', async () => {
    const cases: [string[], string, RegExp][] = [
      [['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'recover', 'everything', '--yes'], 'ERR_INVALID_ARGUMENT', /unknown recovery step "everything"/],
      [recover('--yes', '--cert-chain', '/nonexistent'), 'ERR_INVALID_ARGUMENT', /go together/],
      [recover('--yes', '--ca-grace', 'soon'), 'ERR_INVALID_ARGUMENT', /--ca-grace/],
      [recover('--yes', '--mesh-namespaces', 'Not_A_Namespace'), 'ERR_INVALID_ARGUMENT', /not a namespace name/],
    ];
    for (const [args, errorCode, message] of cases) {
      const res = await runCli(args, { timeoutMs: 60_000 });
      assert.equal(res.code, 1, args.join(' '));
      assert.match(res.stderr, new RegExp(`\\[${errorCode}\\]`));
      assert.match(res.stderr, message);
    }
    assert.equal(await journal(), undefined);
  });

  it('on a terminal, asks before acting: "n" changes nothing, "y" carries the plan out', async () => {
    const before = await snapshot(admin, MESH, [ROOTS, JOURNAL_CONFIGMAP]);
    const no = await runInTerminal(recover(), 'n\n');
    assert.equal(no.code, 1, no.output);
    assert.match(no.output, /^1\. service-account-tokens: /m);
    assert.match(no.output, /Carry out this plan\? \[y\/N\]/);
    assert.match(no.output, /Nothing was changed\./);
    assert.deepEqual(await snapshot(admin, MESH, [ROOTS, JOURNAL_CONFIGMAP]), before);

    const kid = async () => (JSON.parse(Buffer.from((await core.readNamespacedSecret({ namespace: NS, name: 'meshid-authentication' })).data?.['keys.json'] ?? '', 'base64').toString()) as { kid: string }[]).map((k) => k.kid);
    const kids = await kid();
    const yes = await runInTerminal(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'recover', 'jwt-key', '--mesh-namespaces', MESH.join(','), '--url', t.server.httpUrl], 'y\n');
    assert.equal(yes.code, 0, yes.output);
    assert.match(yes.output, /jwt-key +done/);
    assert.match(yes.output, /✔ jwt-key: a session signed with an old key is refused/);
    const now = await kid();
    assert.equal(now.length, 1);
    assert.ok(!kids.includes(now[0] ?? ''), 'a new session key');
  });

  it('resumes after being killed midway: done steps are skipped, nothing is rotated twice, and it completes', async () => {
    const oldRoot = fingerprint((await publishedRoots(core, NS, ROOTS))[0] ?? '');
    const run = spawnCli(recover('--yes'));
    // Kill it once the CA step has announced its new root and is waiting for it to sign.
    const announced = await within(90_000, async () => (await journal())?.progress.ca?.newRoot !== undefined);
    run.child.kill('SIGKILL');
    await run.exited;
    assert.notEqual(announced, undefined, `the CA step was reached:\n${run.output().stderr}`);
    const interrupted = await journal();
    assert.ok(interrupted);
    assert.equal(interrupted.finishedAt, undefined);
    assert.deepEqual(['service-account-tokens', 'jwt-key', 'signing-key'].map((s) => interrupted.progress[s as 'jwt-key']?.completedAt !== undefined), [true, true, true]);
    assert.equal(interrupted.progress.ca?.completedAt, undefined);
    const serial = interrupted.progress['signing-key']?.newSerial;
    const newRoot = interrupted.progress.ca?.newRoot;

    const preview = await runCli(recover('--dry-run'), { timeoutMs: 60_000 });
    assert.match(preview.stdout, new RegExp(`Resumes the interrupted recovery ${interrupted.id} .*done already: service-account-tokens, jwt-key, signing-key`));
    assert.match(preview.stdout, /4\. ca: follow the rotation to root sha256:.* that the interrupted run announced/);

    const again = await runCli(recover('--yes', '-o', 'json'), { timeoutMs: 180_000 });
    assert.equal(again.code, 0, `${again.stderr}\n${again.stdout}`);
    const report = JSON.parse(again.stdout) as RecoveryReport;
    assert.equal(report.resumed, true);
    assert.equal(report.id, interrupted.id);
    assert.deepEqual(report.steps.map((s) => `${s.step}:${s.status}`), ['service-account-tokens:already-done', 'jwt-key:already-done', 'signing-key:already-done', 'ca:done', 'registry:done']);
    assert.equal(report.ok, true, JSON.stringify(report.verification.checks.filter((c) => c.status === 'failed')));
    assert.ok(!report.steps.find((s) => s.step === 'ca')?.objects.some((o) => o.action === 'rotate'), 'the announced root is followed, not replaced by another');

    const keys = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'signing-keys', 'list', '-o', 'json']);
    assert.deepEqual((JSON.parse(keys.stdout) as { serial: number }[]).map((k) => k.serial), [serial], 'one new signing key, not two');
    const roots = await publishedRoots(core, APP, ROOTS);
    assert.deepEqual(roots.map(fingerprint), [newRoot], 'the root the interrupted run announced is the one in force');
    assert.notEqual(newRoot, oldRoot);
    assert.equal(await tokenAccepted(admin, token), false, 'the legacy token deleted before the interruption stays refused');
    assert.ok((await journal())?.finishedAt, 'the journal records the recovery as finished');

    // A finished recovery is not resumed: the next run is a new one.
    const plan = JSON.parse((await runCli(recover('--dry-run', '-o', 'json'), { timeoutMs: 60_000 })).stdout) as RecoveryPlan;
    assert.equal(plan.resumes, undefined);
  });
});
