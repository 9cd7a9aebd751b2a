import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { SdsClient, startAgent, type RunningAgent, type WorkloadTls } from '../../src/agent/index.ts';
import { call } from '../../src/cli/http.ts';
import { createLogger } from '../../src/core/index.ts';
import { CA_AUDIENCE, decodeSecret, loadKubeConfig } from '../../src/kube/index.ts';
import type { RecoveryReport } from '../../src/recovery/index.ts';
import { testEnv } from '../support/env.ts';
import { runCli } from '../support/cli.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { ownKubeconfig } from '../support/session.ts';
import { createCertificate, makeCsr, workloadToken } from '../support/workload.ts';
import { createWorkloads, fingerprint, legacyTokenSecret, publishedRoots, tokenAccepted, waitForDefaultAccount } from './support.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const apps = admin.makeApiClient(AppsV1Api);

// A dedicated installation, so the playground's own keys (used by every other test) stay put.
const NS = 'rec-drill';
const ROOTS = 'rec-drill-root-cert';
const REGISTRY = 'rec-drill-registry';
const [A, B, OUTSIDE] = ['rec-drill-a', 'rec-drill-b', 'rec-drill-outside'];
const MESH = [NS, REGISTRY, A, B];

const whoami = (base: string, token: string) => call({ method: 'GET', url: new URL('/api/whoami', base), headers: { authorization: `Bearer ${token}` }, timeoutMs: 10_000 });
const code = (body: unknown): unknown => (body as { code?: unknown }).code;
const countRoots = (pem: string): number => pem.match(/BEGIN CERTIFICATE/g)?.length ?? 0;
const registryCli = (...args: string[]) => ['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'registry', ...args, '--registry-namespace', REGISTRY];

async function login(user: 'alice' | 'bob', base: string): Promise<{ kubeconfig: string; token: string }> {
  const kubeconfig = await ownKubeconfig(user);
  const res = await runCli(['--kubeconfig', kubeconfig, 'login', '--url', base, '-o', 'json']);
  assert.equal(res.code, 0, res.stderr);
  return { kubeconfig, token: (JSON.parse(res.stdout) as { token: string }).token };
}

async function adminToken(): Promise<string> {
  return decodeSecret(await core.readNamespacedSecret({ namespace: NS, name: 'admin-user-token' }))['value'] ?? '';
}

describe('compromise drill: `meshid recover all --yes` against a dedicated installation', () => {
  let t: TestServer;
  let base = '';
  let agent: RunningAgent;
  let dir = '';
  let sds: SdsClient;
  let sdsErrors: Error[] = [];
  const updates: WorkloadTls[] = [];
  let first: WorkloadTls;
  let workload = '';
  let oldRoot = '';
  const sessions: Record<string, string> = {};
  let userToken = '';
  let oldAdminToken = '';
  const legacy: Record<string, string> = {};
  let report: RecoveryReport;
  let stderr = '';

  before(async () => {
    t = await startTestServer(NS, { ca: { enabled: true, port: 0, keyType: 'ec', rootConfigMap: ROOTS } });
    base = t.server.httpUrl;
    for (const ns of [A, B, OUTSIDE]) await core.createNamespace({ body: { metadata: { name: ns } } });
    assert.notEqual(await within(15_000, async () => (await publishedRoots(core, A, ROOTS)).length === 1), undefined, 'the CA publishes its root');
    oldRoot = (await publishedRoots(core, NS, ROOTS))[0] ?? '';

    // A node's SDS agent, and a workload holding a certificate on an open stream.
    dir = await mkdtemp(join(tmpdir(), 'meshid-rec-'));
    agent = await startAgent(
      admin,
      { socketPath: join(dir, 'sds', 'uds_path'), caAddress: t.server.caAddress ?? '', namespace: NS, rootConfigMap: ROOTS, trustDomain: 'cluster.local', keyType: 'ec', audiences: [CA_AUDIENCE] },
      createLogger('rec-agent', 'silent'),
    );
    workload = await workloadToken(admin, A, 'web', [CA_AUDIENCE], 3600);
    const opened = await SdsClient.first({ socket: join(dir, 'sds', 'uds_path'), token: () => workload, onError: (e) => sdsErrors.push(e) }, 20_000);
    sds = opened.client;
    first = opened.tls;
    sds.onUpdate((tls) => updates.push(tls));
    sdsErrors = [];

    // Sessions, a user token, and the bootstrapped admin token.
    sessions['alice'] = (await login('alice', base)).token;
    sessions['bob'] = (await login('bob', base)).token;
    oldAdminToken = await adminToken();
    const issued = await call({ method: 'POST', url: new URL('/tokens/user', base), headers: { authorization: `Bearer ${oldAdminToken}` }, body: { name: 'ci', groups: ['ci'], validFor: '1h' } });
    assert.equal(issued.status, 200);
    userToken = String(issued.body);
    for (const token of [sessions['alice'], sessions['bob'], userToken]) assert.equal((await whoami(base, token ?? '')).status, 200, 'every credential works before');

    // Legacy token Secrets in two mesh namespaces and one other.
    for (const ns of [A, B, OUTSIDE]) {
      await waitForDefaultAccount(core, ns);
      legacy[ns] = await legacyTokenSecret(core, ns, 'legacy-token');
      assert.equal(await tokenAccepted(admin, legacy[ns] ?? ''), true, `the ${ns} token works before`);
    }
    await createWorkloads(admin, A);

    // A registry entry reconciled into A; then re-keyed by the operator but not yet reconciled.
    const added = await runCli(registryCli('add', '--name', 'corp', '--server', 'registry.example.com', '--username', 'robot', '--password-stdin'), { input: 'old-password\n' });
    assert.equal(added.code, 0, added.stderr);
    const reconciled = await runCli(registryCli('reconcile', '--mesh-namespaces', A));
    assert.equal(reconciled.code, 0, reconciled.stderr);
    const rekeyed = await runCli(registryCli('add', '--name', 'corp', '--server', 'registry.example.com', '--username', 'robot', '--password-stdin', '--replace'), { input: 'new-password\n' });
    assert.equal(rekeyed.code, 0, rekeyed.stderr);

    const res = await runCli(
      [
        '--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'recover', 'all', '--yes', '-o', 'json',
        '--mesh-namespaces', MESH.join(','), '--registry-namespace', REGISTRY, '--root-configmap', ROOTS,
        '--ca-propagation', '3s', '--ca-grace', '2s', '--rollout-timeout', '5s', '--url', base,
      ],
      { timeoutMs: 180_000 },
    );
    stderr = res.stderr;
    assert.equal(res.code, 0, `recover all failed:\n${res.stderr}\n${res.stdout}`);
    report = JSON.parse(res.stdout) as RecoveryReport;
  });

  after(async () => {
    sds?.close();
    await agent?.stop();
    await t?.close();
    for (const ns of [A, B, OUTSIDE, REGISTRY]) await core.deleteNamespace({ name: ns }).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs every step in the safe order, shows progress, and reports durations and a clean verification', () => {
    assert.deepEqual(report.steps.map((s) => `${s.step}:${s.status}`), ['service-account-tokens:done', 'jwt-key:done', 'signing-key:done', 'ca:done', 'registry:done']);
    assert.equal(report.ok, true);
    assert.equal(report.resumed, false);
    assert.deepEqual(report.meshNamespaces, MESH, 'exactly the namespaces asked for, not the playground\'s labelled ones');
    for (const step of report.steps) assert.ok(step.durationMs > 0, `${step.step} has a duration`);
    const ca = report.steps.find((s) => s.step === 'ca');
    assert.ok((ca?.durationMs ?? 0) >= 5000, 'the CA step waits out propagation (3 s) and grace (2 s)');
    assert.deepEqual(report.verification.checks.filter((c) => c.status === 'failed'), []);
    const passed = new Set(report.verification.checks.filter((c) => c.status === 'passed').map((c) => c.check));
    for (const check of [
      'the deleted tokens are refused by the apiserver',
      'a session signed with an old key is refused',
      'a session signed with the new key is accepted',
      'a user token signed by an old key is refused',
      'a user token signed by the new key is accepted',
      'the new root alone signs and is trusted',
      `${ROOTS} holds only the new root in every mesh namespace`,
      'the pull secrets in the mesh namespaces match the registry entries',
    ]) {
      assert.ok(passed.has(check), `check passed: ${check}`);
    }
    assert.match(stderr, /\[1\/5\] service-account-tokens/, 'progress on stderr');
    assert.match(stderr, /\[4\/5\] ca: done/);
    assert.match(stderr, /^1\. service-account-tokens: delete 2 token Secrets in 4 namespaces/m, 'the plan first');
  });

  it('refuses every old credential: sessions, the user token, the admin token', async () => {
    for (const [user, token] of Object.entries(sessions)) {
      const res = await whoami(base, token);
      assert.equal(res.status, 401, `${user}'s old session`);
      assert.equal(code(res.body), 'token-invalid');
    }
    for (const [what, token] of [['user token', userToken], ['admin token', oldAdminToken]] as const) {
      const res = await whoami(base, token);
      assert.equal(res.status, 401, `the old ${what}`);
      assert.equal(code(res.body), 'token-invalid');
    }
  });

  it('deletes the token Secrets of the mesh namespaces, whose tokens are refused, and leaves the one outside alone', async () => {
    for (const ns of [A, B]) {
      assert.equal(await core.readNamespacedSecret({ namespace: ns, name: 'legacy-token' }).then(() => 'there', (e: { code?: number }) => e.code), 404, `${ns}'s token Secret is gone`);
      assert.equal(await tokenAccepted(admin, legacy[ns] ?? ''), false, `${ns}'s old token is refused`);
    }
    assert.ok(await core.readNamespacedSecret({ namespace: OUTSIDE, name: 'legacy-token' }), 'the Secret outside the mesh namespaces is untouched');
    assert.equal(await tokenAccepted(admin, legacy[OUTSIDE] ?? ''), true, 'and its token still works');
    const deleted = report.steps[0]?.objects.filter((o) => o.action === 'delete' && o.kind === 'Secret').map((o) => `${o.namespace ?? ''}/${o.name}`);
    assert.deepEqual(deleted, [`${A}/legacy-token`, `${B}/legacy-token`]);
  });

  it('restarts the workloads as kubectl does, deletes the bare pod, and reports what did not come back', async () => {
    for (const name of ['web', 'api']) {
      const d = await apps.readNamespacedDeployment({ namespace: A, name });
      assert.ok(d.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'], `Deployment ${name} restarted`);
    }
    assert.ok((await apps.readNamespacedStatefulSet({ namespace: A, name: 'db' })).spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']);
    assert.ok((await apps.readNamespacedDaemonSet({ namespace: A, name: 'node-agent' })).spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt']);
    assert.equal(await core.readNamespacedPod({ namespace: A, name: 'debug' }).then(() => 'there', (e: { code?: number }) => e.code), 404);
    const warnings = report.steps[0]?.warnings.join('\n') ?? '';
    assert.match(warnings, /Pod rec-drill-a\/debug had no controller and does not come back/);
    assert.match(warnings, /Deployment rec-drill-a\/api is not back after 5 s: 0\/1 updated pods available/, 'no kubelet: its pod never becomes ready');
    assert.doesNotMatch(warnings, /Deployment rec-drill-a\/web|StatefulSet|DaemonSet/, 'zero-replica workloads are back at once');
  });

  it('replaces the CA: the SDS client got the new root and a new leaf on its open stream, and the old root is trusted nowhere', async () => {
    const newRoots = await publishedRoots(core, A, ROOTS);
    assert.equal(newRoots.length, 1);
    const newRoot = newRoots[0] ?? '';
    assert.notEqual(fingerprint(newRoot), fingerprint(oldRoot));
    assert.ok(updates.some((u) => countRoots(u.rootsPem) === 2), 'ROOTCA with old and new roots was pushed first');
    assert.notEqual(await within(10_000, async () => countRoots(updates.at(-1)?.rootsPem ?? '') === 1), undefined, 'then the bundle without the old root');
    const last = updates.at(-1);
    assert.ok(last);
    assert.equal(fingerprint(last.rootsPem), fingerprint(newRoot));
    const leaf = new X509Certificate(last.certChainPem);
    assert.ok(leaf.verify(new X509Certificate(newRoot).publicKey), 'the pushed leaf chains to the new root');
    assert.notEqual(leaf.serialNumber, new X509Certificate(first.certChainPem).serialNumber);
    assert.deepEqual(sdsErrors, [], 'the stream never broke: no reconnect');

    const oldLeaf = new X509Certificate(first.certChainPem);
    assert.ok(oldLeaf.verify(new X509Certificate(oldRoot).publicKey), 'the old leaf chained to the old root');
    assert.ok(!oldLeaf.verify(new X509Certificate(newRoot).publicKey), 'a certificate chained only to the old root is not trusted by the new bundle');
    const csr = (await makeCsr({ uris: ['spiffe://cluster.local/ns/rec-drill-a/sa/web'] })).csr;
    const trustingOld = await createCertificate(t.server.caAddress ?? '', oldRoot, workload, csr);
    assert.notEqual(trustingOld.code, undefined, 'the CA no longer serves from the old root');
    const fresh = await createCertificate(t.server.caAddress ?? '', newRoot, workload, csr);
    assert.equal(fresh.code, undefined, fresh.details);
    assert.equal(fresh.chain?.at(-1)?.trim(), newRoot.trim(), 'new certificates come from the new root');
  });

  it('lets new logins, new tokens and the re-issued admin token work', async () => {
    const alice = await login('alice', base);
    assert.equal((await whoami(base, alice.token)).status, 200);
    const newAdmin = await adminToken();
    assert.notEqual(newAdmin, oldAdminToken);
    assert.equal((await whoami(base, newAdmin)).status, 200, 'the re-issued admin token');
    const issued = await call({ method: 'POST', url: new URL('/tokens/user', base), headers: { authorization: `Bearer ${newAdmin}` }, body: { name: 'ci', groups: ['ci'], validFor: '1h' } });
    assert.equal(issued.status, 200);
    assert.equal((await whoami(base, String(issued.body))).status, 200, 'a newly issued user token');
    const keys = await runCli(['--kubeconfig', env.kubeconfigs.admin, '-n', NS, 'signing-keys', 'list', '-o', 'json']);
    assert.deepEqual((JSON.parse(keys.stdout) as { serial: number }[]).map((k) => k.serial), [2], 'key 2 alone');
  });

  it('reconciled the re-keyed registry entry into the mesh namespaces, and guided the operator', async () => {
    const original = await core.readNamespacedSecret({ namespace: REGISTRY, name: 'corp' });
    for (const ns of [NS, A, B]) {
      const copy = await core.readNamespacedSecret({ namespace: ns, name: 'corp' });
      assert.deepEqual(copy.data, original.data, `${ns} holds the new credentials`);
      assert.ok(((await core.readNamespacedServiceAccount({ namespace: ns, name: 'default' })).imagePullSecrets ?? []).some((r) => r.name === 'corp'), `${ns}'s default account pulls with it`);
    }
    const auths = JSON.parse(decodeSecret(await core.readNamespacedSecret({ namespace: A, name: 'corp' }))['.dockerconfigjson'] ?? '') as { auths: Record<string, { password: string }> };
    assert.equal(auths.auths['registry.example.com']?.password, 'new-password');
    assert.equal(await core.readNamespacedSecret({ namespace: OUTSIDE, name: 'corp' }).then(() => 'there', (e: { code?: number }) => e.code), 404);
    const notes = report.steps.find((s) => s.step === 'registry')?.notes.join('\n') ?? '';
    assert.match(notes, /corp = registry\.example\.com as robot/);
    assert.match(notes, /meshid registry add --registry-namespace rec-drill-registry --name NAME/);
    assert.doesNotMatch(JSON.stringify(report), /new-password|old-password/, 'no password in the report');
  });
});
