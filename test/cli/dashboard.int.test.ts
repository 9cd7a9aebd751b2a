import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { loadKubeConfig, readExtension, writeExtension } from '../../src/kube/index.ts';
import { MESHID_BIN, runCli } from '../support/cli.ts';
import { testEnv } from '../support/env.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { ownKubeconfig } from '../support/session.ts';

// The playground's meshid runs as a local process, and the apiserver's service proxy refuses
// loopback endpoints. So this test gives the host a non-loopback address of its own (the
// host end of a veth pair whose peer sits in a network namespace the test creates), runs a
// meshid server there, and points the installation's Service at it with an EndpointSlice
// backed by a Pod whose status carries that address (the apiserver proxies only to endpoints
// that are pods). Everything else is real: apiserver, RBAC, the CLI, the user's credentials.

const run = promisify(execFile);
const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const discovery = admin.makeApiClient(DiscoveryV1Api);

const id = randomBytes(4).toString('hex');
const namespace = `dash-${id}`;
const netns = `meshid-dash-${id}`;
const hostLink = `mdh${id}`;
const peerLink = `mdp${id}`;
// A /30 of its own in 10.244.77.0/24: host end .1, peer end .2.
const block = randomInt(0, 64) * 4;
const hostIp = `10.244.77.${block + 1}`;
const peerIp = `10.244.77.${block + 2}`;
const POD = 'meshid-dashboard-test';

let server: TestServer | undefined;
const children: ChildProcess[] = [];

async function ip(...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

before(async () => {
  await ip('netns', 'add', netns);
  await ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', peerLink);
  await ip('link', 'set', peerLink, 'netns', netns);
  await ip('addr', 'add', `${hostIp}/30`, 'dev', hostLink);
  await ip('link', 'set', hostLink, 'up');
  await ip('netns', 'exec', netns, 'ip', 'addr', 'add', `${peerIp}/30`, 'dev', peerLink);
  await ip('netns', 'exec', netns, 'ip', 'link', 'set', peerLink, 'up');

  server = await startTestServer(namespace, { host: hostIp });
  const httpsPort = Number(new URL(server.server.httpsUrl).port);

  // Not labelled like the Deployment's pods: its ReplicaSet (0 replicas) must not adopt it,
  // and `--port-forward` must not pick it.
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name: POD, labels: { 'meshid.test/dashboard': id } },
      spec: { serviceAccountName: SERVICE_ACCOUNT, automountServiceAccountToken: false, containers: [{ name: 'meshid', image: 'meshid:test' }] },
    },
  });
  const pod = await core.readNamespacedPod({ namespace, name: POD });
  await core.replaceNamespacedPodStatus({
    namespace,
    name: POD,
    body: {
      ...pod,
      status: {
        phase: 'Running',
        podIP: hostIp,
        podIPs: [{ ip: hostIp }],
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date() }],
      },
    },
  });
  await discovery.createNamespacedEndpointSlice({
    namespace,
    body: {
      metadata: { name: 'meshid-dashboard-test', labels: { 'kubernetes.io/service-name': 'meshid' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [hostIp], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace, name: POD } }],
      ports: [{ name: 'https', port: httpsPort, protocol: 'TCP' }],
    },
  });

  // The apiserver sees the slice through its informer: wait until its proxy reaches meshid.
  const cluster = admin.getCurrentCluster();
  const healthz = `/api/v1/namespaces/${namespace}/services/https:meshid:5682/proxy/healthz`;
  const reached = await within(15_000, async () => {
    try {
      const opts: { headers: Record<string, string> } = { headers: {} };
      await admin.applyToHTTPSOptions(opts as Parameters<typeof admin.applyToHTTPSOptions>[0]);
      const { call } = await import('../../src/cli/http.ts');
      const o = opts as { headers: Record<string, string>; ca?: string; cert?: string; key?: string };
      const answer = await call({
        method: 'GET',
        url: new URL(healthz, cluster?.server),
        headers: o.headers,
        tls: { ...(o.ca ? { ca: o.ca } : {}), ...(o.cert ? { cert: o.cert } : {}), ...(o.key ? { key: o.key } : {}) },
        timeoutMs: 3000,
      });
      return answer.status === 200;
    } catch {
      return false;
    }
  });
  assert.ok(reached !== undefined, `the apiserver's service proxy never reached meshid at ${hostIp}:${httpsPort}`);
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await server?.close().catch(() => undefined);
  await ip('link', 'del', hostLink).catch(() => undefined);
  await ip('netns', 'del', netns).catch(() => undefined);
});

/** A kubeconfig of a sample user that does not remember a meshid address: the default path. */
async function kubeconfigOf(user: 'alice' | 'bob' | 'carol'): Promise<string> {
  const file = await ownKubeconfig(user);
  const kc = loadKubeConfig({ kubeconfig: file });
  const context = kc.getCurrentContext();
  const rest = { ...(await readExtension(file, context)) };
  delete rest.server;
  delete rest['certificate-authority-data'];
  await writeExtension(file, context, Object.keys(rest).length > 0 ? rest : undefined);
  return file;
}

interface Dashboard {
  child: ChildProcess;
  url: URL;
  origin: string;
  stdout(): string;
  stderr(): string;
  /** SIGINT, then the exit code (bounded). */
  stop(): Promise<number | null>;
}

/** Starts `meshid dashboard --no-browser --port 0` and waits (bounded) for the handoff URL. */
async function startDashboard(kubeconfig: string): Promise<Dashboard> {
  const child = spawn(process.execPath, [MESHID_BIN, '--kubeconfig', kubeconfig, 'dashboard', '--no-browser', '--port', '0', '-n', namespace], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const seen = await within(30_000, () => Promise.resolve(/\n/.test(out) || child.exitCode !== null));
  assert.ok(seen !== undefined && child.exitCode === null, `meshid dashboard printed no URL within 30 s (exit ${String(child.exitCode)}):\n${err}`);
  const url = new URL(out.trim().split('\n')[0] ?? '');
  return {
    child,
    url,
    origin: url.origin,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

const cookieHeader = (setCookies: string[]): string => setCookies.map((c) => c.split(';')[0] ?? '').join('; ');

describe('meshid dashboard through the apiserver service proxy (real playground)', () => {
  for (const user of ['bob', 'alice', 'carol'] as const) {
    it(`hands ${user}'s session to a browser on a local origin, and proxies as ${user}`, async () => {
      const dash = await startDashboard(await kubeconfigOf(user));
      const wrapped = dash.url.searchParams.get('wrapped-token') ?? '';
      assert.match(dash.url.href, /^http:\/\/127\.0\.0\.1:\d+\/api\/login\?wrapped-token=/);
      assert.ok(wrapped.length > 20);

      const handoff = await fetch(dash.url, { redirect: 'manual' });
      assert.equal(handoff.status, 303, await handoff.text());
      assert.equal(handoff.headers.get('location'), `${dash.origin}/`, 'the redirect stays on the local origin');
      const setCookies = handoff.headers.getSetCookie();
      const session = setCookies.find((c) => c.startsWith('meshid_session='));
      assert.ok(session, `a session cookie: ${setCookies.join(' | ')}`);
      assert.match(session, /HttpOnly/i);
      assert.match(session, /SameSite=Strict/i);
      assert.doesNotMatch(session, /Domain=/i);
      const cookie = cookieHeader(setCookies);

      const me = await fetch(`${dash.origin}/api/whoami`, { headers: { cookie } });
      assert.equal(me.status, 200);
      assert.equal(((await me.json()) as { name: string }).name, user);

      const replay = await fetch(dash.url, { redirect: 'manual' });
      assert.equal(replay.status, 401, 'a wrapped token works once');

      // A watch streams through both proxies: the first event arrives while the answer goes on.
      if (user === 'bob') {
        const abort = new AbortController();
        const watch = await fetch(`${dash.origin}/api/k8s/api/v1/namespaces/${namespace}/pods?watch=1`, { headers: { cookie }, signal: abort.signal });
        assert.equal(watch.status, 200);
        const reader = watch.body?.getReader();
        assert.ok(reader);
        const first = await Promise.race([reader.read(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no watch event within 10 s')), 10_000))]);
        assert.match(Buffer.from(first.value ?? new Uint8Array()).toString('utf8'), /"type":"ADDED"/);
        abort.abort();
      }

      // Only loopback names: a rebinding page under another name gets nothing.
      const rebound = await new Promise<number>((resolve, reject) => {
        get(`${dash.origin}/api/whoami`, { headers: { cookie, host: `rebound.example:${dash.url.port}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      assert.equal(rebound, 403);

      const code = await dash.stop();
      assert.equal(code, 0, dash.stderr());
      const sessionToken = (session.split(';')[0] ?? '').slice('meshid_session='.length);
      const printed = dash.stdout().replace(dash.url.href, '') + dash.stderr();
      assert.ok(!printed.includes(wrapped), 'the wrapped token appears only in the URL');
      assert.ok(!printed.includes(sessionToken) && !dash.stdout().includes(sessionToken), 'the session token is never printed');
      assert.match(dash.stderr(), new RegExp(`through the apiserver's service proxy to ${namespace}/meshid, as ${user}\\.`));
    });
  }

  it('says in one line when the port is taken, before it logs in', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as { port: number }).port;
      const res = await runCli(['--kubeconfig', await kubeconfigOf('bob'), 'dashboard', '--no-browser', '--port', String(port), '-n', namespace]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, new RegExp(`^error: port ${port} on 127\\.0\\.0\\.1 is in use \\[ERR_INVALID_ARGUMENT\\]$`, 'm'));
      assert.match(res.stderr, /^hint: .*--port 0/m);
      assert.equal(res.stdout, '');
    } finally {
      busy.close();
    }
  });

  it('--port-forward without a running meshid pod says so in one line', async () => {
    const res = await runCli(['--kubeconfig', await kubeconfigOf('bob'), 'dashboard', '--no-browser', '--port-forward', '--port', '0', '-n', namespace]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`^error: no running meshid pod in ${namespace}: use the default service proxy or --url \\[ERR_NOT_FOUND\\]$`, 'm'));
    assert.equal(res.stdout, '');
  });
});
