import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call } from '../../src/cli/http.ts';
import { loadKubeConfig, readExtension } from '../../src/kube/index.ts';
import type { RecoveryReport } from '../../src/recovery/index.ts';
import { runCli } from '../support/cli.ts';
import { testNodeEnv } from '../support/env.ts';
import { DEMO_NAMESPACES, FULL_MATRIX, adminKubectl, eventually, livePods, publishedRootPems, servedLeaf, settledMatrix, signedBy, type PodState } from '../support/node-demo.ts';
import { ownKubeconfig } from '../support/session.ts';

// What only a node can prove (issue 14, item 5): the server survives losing a pod, a root
// rotation reaches the demo pods' open SDS streams, and recovery restarts the mesh and sees it
// come back with certificates of the new root. Recovery goes last: it replaces every key.
const env = testNodeEnv();
const kubectl = adminKubectl(env);
const SYSTEM = 'meshid-system';
const SERVERS = 'app.kubernetes.io/name=meshid';
const HTTPBIN_PORT = 8443;

const demoPods = async (): Promise<PodState[]> => (await Promise.all(DEMO_NAMESPACES.map((ns) => livePods(kubectl, ns)))).flat();

/** The one root the demo namespaces trust, once a rotation has dropped every other. */
async function soleRoot(): Promise<string | undefined> {
  const bundles = await Promise.all(DEMO_NAMESPACES.map((ns) => publishedRootPems(kubectl, ns)));
  const [first] = bundles;
  return bundles.every((b) => b.length === 1 && b[0] === first?.[0]) ? first?.[0] : undefined;
}

/** Every httpbin serves a leaf of `rootPem` (bounded: the agent pushes it on the open stream). */
async function httpbinsSignedBy(rootPem: string): Promise<boolean> {
  const pods = (await demoPods()).filter((p) => p.app === 'httpbin');
  if (pods.length !== DEMO_NAMESPACES.length) return false;
  for (const pod of pods) if (!signedBy(await servedLeaf(pod.ip, HTTPBIN_PORT), rootPem)) return false;
  return true;
}

describe('resilience on a real node: pod loss, root rotation, recovery', () => {
  it('keeps answering through the Service while a server pod is deleted, and is back to 2 Ready', async () => {
    const before = await livePods(kubectl, SYSTEM, SERVERS);
    assert.equal(before.filter((p) => p.ready).length, 2, 'two Ready server replicas to begin with');
    const pdb = await kubectl(['-n', SYSTEM, 'get', 'pdb', 'meshid', '-o', 'jsonpath={.spec.minAvailable}']);
    assert.equal(pdb.stdout, '1', pdb.stderr);

    // A session through the Service, over HTTPS with the CA the playground gave the users.
    const alice = await ownKubeconfig('alice', env);
    const login = await runCli(['--kubeconfig', alice, 'login', '--url', env.server.https, '-o', 'json']);
    assert.equal(login.code, 0, login.stderr);
    const token = (JSON.parse(login.stdout) as { token: string }).token;
    const extension = await readExtension(alice, loadKubeConfig({ kubeconfig: alice }).getCurrentContext());
    const ca = Buffer.from(extension['certificate-authority-data'] ?? '', 'base64').toString('utf8');
    assert.match(ca, /BEGIN CERTIFICATE/);

    // Every ~100 ms: /readyz over HTTP and whoami over HTTPS, as ordinary keep-alive clients.
    const failures: string[] = [];
    let requests = 0;
    let polling = true;
    const poller = (async () => {
      for (let i = 0; polling && i < 1_200; i++) {
        const at = new Date().toISOString();
        const ready = await fetch(`${env.server.http}/readyz`, { signal: AbortSignal.timeout(10_000) }).then(
          async (r) => (await r.text(), r.status),
          (error: Error & { cause?: { code?: string } }) => error.cause?.code ?? error.message,
        );
        const who = await call({ method: 'GET', url: new URL('/api/whoami', env.server.https), headers: { authorization: `Bearer ${token}` }, tls: { ca }, timeoutMs: 10_000 }).then(
          (a) => a.status,
          (error: Error & { code?: string }) => error.code ?? error.message,
        );
        requests += 2;
        if (ready !== 200) failures.push(`${at} readyz ${ready}`);
        if (who !== 200) failures.push(`${at} whoami ${who}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const victim = before[0]?.name ?? '';
      const deleted = await kubectl(['-n', SYSTEM, 'delete', 'pod', victim, '--wait=false']);
      assert.equal(deleted.code, 0, deleted.stderr);
      // Back to two Ready replicas, the victim not among them: at most 90 s.
      const back = await eventually(180, 500, async () => {
        const pods = await livePods(kubectl, SYSTEM, SERVERS);
        const gone = !(await kubectl(['-n', SYSTEM, 'get', 'pod', victim, '-o', 'name'])).stdout;
        return gone && pods.length === 2 && pods.every((p) => p.ready) && !pods.some((p) => p.name === victim) ? pods : undefined;
      });
      assert.ok(back, `the Deployment is not back to 2 Ready replicas: ${JSON.stringify(await livePods(kubectl, SYSTEM, SERVERS))}`);
      // Some more polling with the replacement in the rotation.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    } finally {
      polling = false;
      await poller;
    }
    assert.ok(requests >= 40, `only ${requests} requests were made`);
    assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
  });

  it('`meshid ca rotate` reaches the open SDS streams of the demo pods: no restart, 4 x 200', async () => {
    const before = await demoPods();
    assert.equal(before.length, 4, JSON.stringify(before));
    const oldRoots = await publishedRootPems(kubectl, 'foo');

    // Short times, so the old root is gone within the test: then only new leaves can talk.
    const rotate = await runCli(['--kubeconfig', env.kubeconfigs.admin, 'ca', 'rotate', '--propagation', '3s', '--grace', '3s', '-o', 'json']);
    assert.equal(rotate.code, 0, rotate.stderr);
    const { newRoot } = JSON.parse(rotate.stdout) as { newRoot: string };

    const root = await eventually(60, 1_000, async () => {
      const status = await runCli(['--kubeconfig', env.kubeconfigs.admin, 'ca', 'status', '-o', 'json']);
      const s = JSON.parse(status.stdout) as { rootFingerprint: string; trustBundle: unknown[]; rotation?: unknown };
      if (s.rootFingerprint !== newRoot || s.trustBundle.length !== 1 || s.rotation !== undefined) return undefined;
      return soleRoot();
    });
    assert.ok(root, 'the rotation finishes and the demo namespaces trust the new root alone');
    assert.ok(!oldRoots.includes(root), 'the trusted root is a new one');

    assert.ok(await eventually(30, 1_000, async () => ((await httpbinsSignedBy(root)) ? true : undefined)), 'both httpbins serve a leaf of the new root');
    // httpbin trusts the new root alone now, so a 200 also proves each sleep holds a new leaf.
    assert.deepEqual(await settledMatrix(kubectl), FULL_MATRIX);

    const after = await demoPods();
    assert.deepEqual(
      after.map((p) => `${p.name} restarts=${p.restarts}`),
      before.map((p) => `${p.name} restarts=${p.restarts}`),
      'the same pods, not restarted',
    );
  });

  it('`meshid recover all --yes` restarts the mesh, waits for it, and it is back with leaves of the new root', async () => {
    const demoBefore = await demoPods();
    const serversBefore = await livePods(kubectl, SYSTEM);
    const oldRoots = await publishedRootPems(kubectl, 'foo');

    const res = await runCli(['--kubeconfig', env.kubeconfigs.admin, 'recover', 'all', '--yes', '-o', 'json'], { timeoutMs: 420_000 });
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as RecoveryReport;
    assert.equal(report.ok, true);
    assert.deepEqual(report.steps.map((s) => `${s.step}:${s.status}`), ['service-account-tokens:done', 'jwt-key:done', 'signing-key:done', 'ca:done', 'registry:done']);
    const tokens = report.steps[0];
    assert.deepEqual(tokens?.warnings, []);
    const restarted = (tokens?.objects ?? []).filter((o) => o.action === 'restart').map((o) => `${o.kind} ${o.namespace ?? ''}/${o.name}`);
    for (const w of ['Deployment meshid-system/meshid', 'DaemonSet meshid-system/meshid-agent', 'Deployment foo/sleep', 'Deployment foo/httpbin', 'Deployment bar/sleep', 'Deployment bar/httpbin']) assert.ok(restarted.includes(w), `${w} is restarted (${restarted.join(', ')})`);
    // meshid's own pods first: the demo pods restart only once the CA and the agent are back.
    assert.ok(restarted.indexOf('DaemonSet meshid-system/meshid-agent') < restarted.indexOf('Deployment foo/sleep'));
    assert.match(res.stderr, /meshid's own pods are back and Ready/);
    assert.match(res.stderr, /the mesh workloads are back and Ready/);
    const back = report.verification.checks.find((c) => c.check === 'restarted pods came back');
    assert.equal(back?.status, 'passed', back?.detail);
    assert.deepEqual(report.verification.checks.filter((c) => c.status === 'failed'), []);

    // New pods, every one Ready: none of the pods from before is left.
    const demoAfter = await demoPods();
    assert.equal(demoAfter.length, 4, JSON.stringify(demoAfter));
    assert.ok(demoAfter.every((p) => p.ready), JSON.stringify(demoAfter));
    assert.deepEqual(demoAfter.filter((p) => demoBefore.some((b) => b.uid === p.uid)), [], 'every demo pod is new');
    const serversAfter = await livePods(kubectl, SYSTEM);
    assert.equal(serversAfter.length, 3, JSON.stringify(serversAfter));
    assert.deepEqual(serversAfter.filter((p) => serversBefore.some((b) => b.uid === p.uid)), [], "every meshid pod is new");

    // Their certificates come from the new root, which alone is trusted, and mTLS holds.
    const root = await soleRoot();
    assert.ok(root, 'the demo namespaces trust one root');
    assert.ok(!oldRoots.includes(root), 'a new one');
    assert.ok(await eventually(30, 1_000, async () => ((await httpbinsSignedBy(root)) ? true : undefined)), 'both httpbins serve a leaf of the new root');
    assert.deepEqual(await settledMatrix(kubectl), FULL_MATRIX);
  });
});
