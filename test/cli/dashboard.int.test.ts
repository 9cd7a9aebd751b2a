import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { SERVICE_ACCOUNT } from '../../src/install/index.ts';
import { loadKubeConfig, readExtension, writeExtension } from '../../src/kube/index.ts';
import { killDashboards, launchBrowser, openTab, proxyRequest, refreshTarget, startDashboard, type ProxyAnswer, type RunningDashboard } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { testEnv } from '../support/env.ts';
import { startTestServer, within, type TestServer } from '../support/server.ts';
import { ownKubeconfig } from '../support/session.ts';

// This test runs meshid as a local process of its own, against a fresh installation, and the
// apiserver's service proxy refuses loopback endpoints. So it gives the host a non-loopback address of its own (the
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
      // No scheduler serves this name: the pod never reaches the node, whose kubelet would
      // otherwise take over its status (and its address).
      spec: { schedulerName: 'meshid-test-none', serviceAccountName: SERVICE_ACCOUNT, automountServiceAccountToken: false, containers: [{ name: 'meshid', image: 'meshid:test' }] },
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
  killDashboards();
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

/** `meshid dashboard --no-browser --port 0` for this file's installation. */
function startFor(kubeconfig: string, ...more: string[]): Promise<RunningDashboard> {
  return startDashboard(['--kubeconfig', kubeconfig, 'dashboard', '--no-browser', '--port', '0', '-n', namespace, ...more]);
}

const cookieHeader = (setCookies: string[]): string => setCookies.map((c) => c.split(';')[0] ?? '').join('; ');
const setCookies = (answer: ProxyAnswer): string[] => answer.headers['set-cookie'] ?? [];

describe('meshid dashboard through the apiserver service proxy (real playground)', () => {
  for (const user of ['bob', 'alice', 'carol'] as const) {
    it(`hands ${user}'s session to a browser on a name of its own when the link is opened, and proxies as ${user}`, async () => {
      const dash = await startFor(await kubeconfigOf(user));
      const link = dash.link ?? assert.fail('no link on stdout');
      assert.match(link.href, /^http:\/\/[a-z2-7]{26}\.localhost:\d+\/\.meshid\/handoff\/[A-Za-z0-9_-]{22}$/);
      assert.equal(link.origin, dash.origin);
      assert.doesNotMatch(dash.stderr(), /Logged in/, 'no login before the link is opened');

      const handoff = await proxyRequest(dash, link.pathname, { headers: { accept: 'text/html' } });
      assert.equal(handoff.status, 200, handoff.body);
      const location = refreshTarget(handoff.body);
      assert.match(location, /^\/api\/login\?wrapped-token=[^&]{20,}$/, 'on to meshid, on the same origin');
      const wrapped = decodeURIComponent(location.slice('/api/login?wrapped-token='.length));

      // As the browser follows the page: a same-origin navigation.
      const navigation = { accept: 'text/html', 'sec-fetch-site': 'same-origin' };
      const login = await proxyRequest(dash, location, { headers: navigation });
      assert.equal(login.status, 303, login.body);
      assert.equal(login.headers.location, `${dash.origin}/`, 'the redirect stays on the local origin');
      const session = setCookies(login).find((c) => c.startsWith('meshid_session='));
      assert.ok(session, `a session cookie: ${setCookies(login).join(' | ')}`);
      assert.match(session, /HttpOnly/i);
      assert.match(session, /SameSite=Strict/i);
      assert.doesNotMatch(session, /Domain=/i, 'host-only: the cookie stays on this name');
      const cookie = cookieHeader(setCookies(login));

      const me = await proxyRequest(dash, '/api/whoami', { headers: { cookie } });
      assert.equal(me.status, 200, me.body);
      assert.equal((JSON.parse(me.body) as { name: string }).name, user);

      assert.equal((await proxyRequest(dash, location, { headers: navigation })).status, 401, 'a wrapped token works once');
      const again = await proxyRequest(dash, link.pathname, { headers: { accept: 'text/html' } });
      assert.equal(again.status, 410, 'the link works once');
      assert.match(again.body, /data-code="handoff-used"/);
      assert.equal((JSON.parse((await proxyRequest(dash, link.pathname)).body) as { code: string }).code, 'handoff-used');

      // A watch streams through both proxies: the first event arrives while the answer goes on.
      if (user === 'bob') {
        const first = await new Promise<string>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port: dash.port, path: `/api/k8s/api/v1/namespaces/${namespace}/pods?watch=1`, headers: { host: dash.host, cookie } },
            (res) => {
              assert.equal(res.statusCode, 200);
              res.once('data', (c: Buffer) => {
                resolve(c.toString('utf8'));
                req.destroy();
              });
            },
          );
          req.setTimeout(10_000, () => req.destroy(new Error('no watch event within 10 s')));
          req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
          req.end();
        });
        assert.match(first, /"type":"ADDED"/);
      }

      // Only its own name: a rebinding page, and any other program on 127.0.0.1, gets nothing.
      for (const host of [`rebound.example:${dash.port}`, `127.0.0.1:${dash.port}`, `localhost:${dash.port}`]) {
        assert.equal((await proxyRequest(dash, '/api/whoami', { headers: { cookie, host } })).status, 403, host);
      }

      const code = await dash.stop();
      assert.equal(code, 0, dash.stderr());
      const sessionToken = (session.split(';')[0] ?? '').slice('meshid_session='.length);
      const printed = dash.stdout() + dash.stderr();
      assert.ok(!printed.includes(wrapped), 'the wrapped token is never printed');
      assert.ok(!printed.includes(sessionToken), 'the session token is never printed');
      assert.match(dash.stderr(), new RegExp(`through the apiserver's service proxy to ${namespace}/meshid\\. Ctrl-C stops it\\.`));
      assert.match(dash.stderr(), new RegExp(`^Logged in as ${user}; `, 'm'));
    });
  }

  it('alice in Chromium: follows the printed link and lands logged in, with no certificate in sight', async () => {
    const dash = await startFor(await kubeconfigOf('alice'));
    const browser = await launchBrowser();
    try {
      const tab = await openTab(browser);
      const { page } = tab;
      await page.goto(dash.link?.href ?? '');
      await page.getByTestId('user-name').filter({ hasText: 'alice' }).waitFor({ timeout: 15_000 });
      assert.equal(page.url(), `${dash.origin}/`, 'the address bar shows the local origin, without a token');
      await page.getByText('Loading…').first().waitFor({ state: 'detached', timeout: 15_000 }).catch(() => undefined);
      await tab.screenshot('alice-service-proxy');
      tab.assertNoErrors();
    } finally {
      await browser.close();
      assert.equal(await dash.stop(), 0, dash.stderr());
    }
  });

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
