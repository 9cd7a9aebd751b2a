import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import type { Browser, Page } from 'playwright-core';
import { SERVICE_NAME } from '../../src/install/index.ts';
import { createAuthority } from '../../src/pki/index.ts';
import { loadKubeConfig, readExtension, writeExtension } from '../../src/kube/index.ts';
import { killDashboards, launchBrowser, openTab, proxyRequest, refreshTarget, startDashboard, type RunningDashboard } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { testNodeEnv } from '../support/env.ts';
import { ownKubeconfig } from '../support/session.ts';

// meshid runs here only as the two server pods of Deployment `meshid`: there is no host
// process and no network-namespace trick behind the Service. Whatever the dashboard's proxy
// reaches, it reaches through the apiserver (service proxy or pods/portforward) to a pod.

const env = testNodeEnv();
const NAMESPACE = 'meshid-system';
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const rbac = admin.makeApiClient(RbacAuthorizationV1Api);

type User = 'admin' | 'alice' | 'bob' | 'carol';

const isReady = (pod: V1Pod): boolean => !pod.metadata?.deletionTimestamp && (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** The meshid server pods that are Ready now, by name. */
async function readyServerPods(): Promise<string[]> {
  const list = await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app.kubernetes.io/name=meshid' });
  return list.items.filter(isReady).map((p) => p.metadata?.name ?? '').sort();
}

/**
 * A sample user's kubeconfig that still names the playground's serving CA but no longer
 * remembers the Service's address: `meshid dashboard` then takes its default path (the
 * apiserver's service proxy), as on a cluster where nobody wrote a meshid address down.
 */
async function withoutRememberedServer(user: User): Promise<string> {
  const file = await ownKubeconfig(user, env);
  const context = loadKubeConfig({ kubeconfig: file }).getCurrentContext();
  const rest = { ...(await readExtension(file, context)) };
  delete rest.server;
  await writeExtension(file, context, Object.keys(rest).length > 0 ? rest : undefined);
  return file;
}

function dashboard(kubeconfig: string, ...more: string[]): Promise<RunningDashboard> {
  return startDashboard(['--kubeconfig', kubeconfig, 'dashboard', '--no-browser', '--port', '0', ...more]);
}

/**
 * Opens the handoff link and follows the page it answers, as a browser does, and answers the
 * session cookies: the CLI's login, the wrapped token and the cookie all cross the upstream.
 */
async function handOff(dash: RunningDashboard): Promise<string> {
  const link = dash.link ?? assert.fail('no link on stdout');
  const page = await proxyRequest(dash, link.pathname, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 200, `${page.body}\n${dash.stderr()}`);
  const login = await proxyRequest(dash, refreshTarget(page.body), { headers: { accept: 'text/html', 'sec-fetch-site': 'same-origin' } });
  assert.equal(login.status, 303, login.body);
  assert.equal(login.headers.location, `${dash.origin}/`, 'the redirect is mapped back onto the local origin');
  const cookies = login.headers['set-cookie'] ?? [];
  assert.ok(cookies.some((c) => c.startsWith('meshid_session=') && /HttpOnly/i.test(c)), cookies.join(' | '));
  return cookies.map((c) => c.split(';')[0] ?? '').join('; ');
}

/** The pod that answered: in a container the host name is the pod's name, and meshid's index names it. */
async function answeringPod(dash: RunningDashboard): Promise<string> {
  const index = await proxyRequest(dash, '/', { headers: { accept: 'application/json' } });
  assert.equal(index.status, 200, index.body);
  return (JSON.parse(index.body) as { hostname: string }).hostname;
}

async function whoami(dash: RunningDashboard, cookie: string): Promise<{ name: string; groups: string[] }> {
  const me = await proxyRequest(dash, '/api/whoami', { headers: { cookie } });
  assert.equal(me.status, 200, me.body);
  return JSON.parse(me.body) as { name: string; groups: string[] };
}

after(() => killDashboards());

describe("meshid dashboard (default): the apiserver's service proxy to the server pods", () => {
  for (const user of ['bob', 'alice', 'carol'] as const) {
    it(`logs ${user} in and proxies as ${user}, answered by a Ready meshid pod`, async () => {
      const dash = await dashboard(await withoutRememberedServer(user));
      try {
        assert.match(dash.stderr(), new RegExp(`through the apiserver's service proxy to ${NAMESPACE}/${SERVICE_NAME}\\. Ctrl-C stops it\\.`));
        const pods = await readyServerPods();
        assert.equal(pods.length, 2, `two Ready server pods: ${pods.join(', ')}`);
        assert.ok(pods.includes(await answeringPod(dash)), 'the Service sent the request to one of its pods');

        const cookie = await handOff(dash);
        assert.equal((await whoami(dash, cookie)).name, user);
        // Kubernetes through meshid, as the user: bob may read meshid's pods, alice and carol may not.
        const listed = await proxyRequest(dash, `/api/k8s/api/v1/namespaces/${NAMESPACE}/pods`, { headers: { cookie } });
        if (user === 'bob') {
          assert.equal(listed.status, 200, listed.body);
          assert.deepEqual((JSON.parse(listed.body) as { items: V1Pod[] }).items.filter(isReady).filter((p) => p.metadata?.labels?.['app.kubernetes.io/name'] === 'meshid').map((p) => p.metadata?.name).sort(), pods);
        } else {
          // Kubernetes' own refusal, naming the user meshid impersonated.
          assert.equal(listed.status, 403, listed.body);
          const status = JSON.parse(listed.body) as { reason?: string; message?: string };
          assert.equal(status.reason, 'Forbidden', listed.body);
          assert.match(status.message ?? '', new RegExp(`User "${user}" cannot list resource "pods" in API group "" in the namespace "${NAMESPACE}"`));
        }
      } finally {
        assert.equal(await dash.stop(), 0, dash.stderr());
      }
      assert.match(dash.stderr(), new RegExp(`^Logged in as ${user}; `, 'm'));
    });
  }

  it('reaches both replicas: the Service balances across pods the apiserver proxies to by pod IP', async () => {
    const dash = await dashboard(await withoutRememberedServer('bob'));
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 40 && seen.size < 2; i++) seen.add(await answeringPod(dash));
      assert.deepEqual([...seen].sort(), await readyServerPods());
    } finally {
      assert.equal(await dash.stop(), 0, dash.stderr());
    }
  });
});

describe('meshid dashboard --port-forward: a real port-forward to a Ready server pod', () => {
  const binding = `meshid-test-port-forward-${randomBytes(3).toString('hex')}`;

  after(async () => {
    await rbac.deleteNamespacedRoleBinding({ namespace: NAMESPACE, name: binding }).catch(() => undefined);
    await rbac.deleteNamespacedRole({ namespace: NAMESPACE, name: binding }).catch(() => undefined);
  });

  /** Starts it, checks the pod it chose is Ready and is the one answering, and logs in through it. */
  async function loginThroughPortForward(user: User): Promise<void> {
    const dash = await dashboard(await ownKubeconfig(user, env), '--port-forward');
    try {
      const chosen = new RegExp(`through a port-forward to pod ${NAMESPACE}/(\\S+)\\. Ctrl-C stops it\\.`).exec(dash.stderr())?.[1] ?? assert.fail(dash.stderr());
      assert.ok((await readyServerPods()).includes(chosen), `${chosen} is a Ready meshid pod`);
      // Every request goes to that pod, never through the Service.
      for (let i = 0; i < 5; i++) assert.equal(await answeringPod(dash), chosen);
      const cookie = await handOff(dash);
      assert.equal((await whoami(dash, cookie)).name, user);
      assert.equal(await answeringPod(dash), chosen);
    } finally {
      assert.equal(await dash.stop(), 0, dash.stderr());
    }
    assert.match(dash.stderr(), new RegExp(`^Logged in as ${user}; `, 'm'));
  }

  it('logs admin in through the tunnel, with the pod checked against the remembered serving CA', async () => {
    await loginThroughPortForward('admin');
  });

  it('refuses bob in one line: view may list the pods but not port-forward to them', async () => {
    const res = await runCli(['--kubeconfig', await ownKubeconfig('bob', env), 'dashboard', '--no-browser', '--port-forward', '--port', '0']);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, new RegExp(`^error: you may not port-forward to meshid pod ${NAMESPACE}/meshid-\\S+ \\[ERR_FORBIDDEN\\]$`, 'm'));
    assert.match(res.stderr, /^hint: .*create on pods\/portforward.*service proxy/m);
    assert.equal(res.stdout, '', 'no link for a proxy that cannot work');
  });

  it('refuses alice and carol in one line: they may not even list the pods', async () => {
    for (const user of ['alice', 'carol'] as const) {
      const res = await runCli(['--kubeconfig', await ownKubeconfig(user, env), 'dashboard', '--no-browser', '--port-forward', '--port', '0']);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, new RegExp(`^error: cannot list meshid pods in ${NAMESPACE}: HTTP 403 \\[ERR_FORBIDDEN\\]$`, 'm'));
      assert.equal(res.stdout, '');
    }
  });

  it('logs bob in once an admin lets him port-forward in meshid-system, as bob', async () => {
    await rbac.createNamespacedRole({
      namespace: NAMESPACE,
      body: { metadata: { name: binding }, rules: [{ apiGroups: [''], resources: ['pods/portforward'], verbs: ['create', 'get'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: NAMESPACE,
      body: { metadata: { name: binding }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: binding }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'bob' }] },
    });
    await loginThroughPortForward('bob');
  });

  it('moves on to the other Ready pod when the one it forwards to is deleted, and the session goes on there', async () => {
    const dash = await dashboard(await ownKubeconfig('admin', env), '--port-forward');
    try {
      const chosen = await answeringPod(dash);
      const cookie = await handOff(dash);
      await core.deleteNamespacedPod({ namespace: NAMESPACE, name: chosen });
      // Requests may fail while the pod terminates (502): the proxy must move on by itself.
      let now = chosen;
      for (const deadline = Date.now() + 60_000; now === chosen && Date.now() < deadline; await sleep(500)) {
        const index = await proxyRequest(dash, '/', { headers: { accept: 'application/json' } });
        if (index.status === 200) now = (JSON.parse(index.body) as { hostname: string }).hostname;
      }
      assert.notEqual(now, chosen, `still forwarding to the deleted pod:\n${dash.stderr()}`);
      assert.ok((await readyServerPods()).includes(now), `${now} is a Ready meshid pod`);
      assert.match(dash.stderr(), new RegExp(`^Pod ${NAMESPACE}/${chosen} no longer answers; port-forwarding to pod ${NAMESPACE}/${now}\\.$`, 'm'));
      // The session is meshid's signed cookie: another replica takes it as it is.
      assert.equal((await whoami(dash, cookie)).name, 'admin');
    } finally {
      assert.equal(await dash.stop(), 0, dash.stderr());
      // The node is shared with the test files after this one: give the Deployment back whole.
      for (const deadline = Date.now() + 120_000; (await readyServerPods()).length < 2 && Date.now() < deadline; ) await sleep(1000);
    }
    assert.equal((await readyServerPods()).length, 2, 'the Deployment replaced the pod');
  });

  it('refuses a pod whose certificate the remembered CA did not sign, and logs nobody in', async () => {
    const file = await ownKubeconfig('admin', env);
    const context = loadKubeConfig({ kubeconfig: file }).getCurrentContext();
    const stranger = await createAuthority('not-the-playground-serving-ca');
    await writeExtension(file, context, { ...(await readExtension(file, context)), 'certificate-authority-data': Buffer.from(stranger.certPem).toString('base64') });
    const dash = await dashboard(file, '--port-forward');
    try {
      const page = await proxyRequest(dash, dash.link?.pathname ?? '', { headers: { accept: 'application/json' } });
      assert.equal(page.status, 502, page.body);
      assert.equal((JSON.parse(page.body) as { code: string }).code, 'handoff-failed');
      assert.doesNotMatch(dash.stderr(), /Logged in/);
      assert.match(dash.stderr(), /^dashboard proxy: .*certificate/m, 'the TLS check is what failed');
    } finally {
      assert.equal(await dash.stop(), 0, dash.stderr());
    }
  });
});

describe('the Workload identity page lists the demo pods with their SPIFFE IDs (headless Chromium)', () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  interface Row {
    namespace: string;
    pod: string;
    serviceAccount: string;
    spiffeId: string;
    phase: string;
    node: string;
  }

  /** The Workloads table as text rows, in the page's order. */
  async function workloadRows(page: Page): Promise<Row[]> {
    const rows = await page.getByRole('table', { name: 'Workloads' }).locator('tbody tr').all();
    const cells = await Promise.all(rows.map(async (row) => (await row.locator('td').allTextContents()).map((text) => text.trim())));
    return cells.map(([namespace = '', pod = '', serviceAccount = '', spiffeId = '', phase = '', node = '']) => ({ namespace, pod, serviceAccount, spiffeId, phase, node }));
  }

  async function openWorkloadIdentity(user: User): Promise<{ page: Page; rows: () => Promise<Row[]>; done: () => Promise<void> }> {
    const dash = await dashboard(await withoutRememberedServer(user));
    const tab = await openTab(browser);
    const { page } = tab;
    await page.goto(dash.link?.href ?? assert.fail('no link'));
    await page.getByTestId('user-name').filter({ hasText: user }).waitFor({ timeout: 20_000 });
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Workload identity', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Workload identity' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/workload-identity');
    return {
      page,
      rows: () => workloadRows(page),
      done: async () => {
        await tab.screenshot(`node-${user}-workload-identity`);
        tab.assertNoErrors();
        await tab.close();
        assert.equal(await dash.stop(), 0, dash.stderr());
      },
    };
  }

  it('bob (view, cluster-wide) sees sleep and httpbin in foo and bar, each with spiffe://cluster.local/ns/<ns>/sa/<sa>', async () => {
    const demo = (await Promise.all(['foo', 'bar'].map((namespace) => core.listNamespacedPod({ namespace })))).flatMap((l) => l.items);
    const expected = demo
      .map((p) => ({
        namespace: p.metadata?.namespace ?? '',
        pod: p.metadata?.name ?? '',
        serviceAccount: p.spec?.serviceAccountName ?? '',
        spiffeId: `spiffe://cluster.local/ns/${p.metadata?.namespace ?? ''}/sa/${p.spec?.serviceAccountName ?? ''}`,
        phase: 'Running',
        node: env.node.name,
      }))
      .sort((a, b) => `${a.namespace}/${a.pod}`.localeCompare(`${b.namespace}/${b.pod}`));
    assert.deepEqual(
      expected.map((r) => `${r.namespace}/${r.serviceAccount}`).sort(),
      ['bar/httpbin', 'bar/sleep', 'foo/httpbin', 'foo/sleep'],
      'one pod per demo Deployment',
    );

    const view = await openWorkloadIdentity('bob');
    try {
      const table = view.page.getByRole('table', { name: 'Workloads' });
      for (const row of expected) await table.getByRole('cell', { name: row.pod, exact: true }).waitFor({ timeout: 20_000 });
      const demoRows = (await view.rows()).filter((r) => r.namespace === 'foo' || r.namespace === 'bar').sort((a, b) => `${a.namespace}/${a.pod}`.localeCompare(`${b.namespace}/${b.pod}`));
      assert.deepEqual(demoRows, expected);
      // The server's own pods are workloads too, with the identity of meshid's service account.
      assert.ok((await view.rows()).some((r) => r.namespace === NAMESPACE && r.spiffeId === `spiffe://cluster.local/ns/${NAMESPACE}/sa/meshid`));
      // Every column shows at the tests' 1280 px: the panel does not hide the Node column behind a scroll bar.
      // (The tests compile without the DOM's types: the element is typed by what is used of it.)
      const overflow = await table.evaluate((t: { closest(selector: string): { scrollWidth: number; clientWidth: number } | null }) => {
        const panel = t.closest('.panel-body');
        return panel ? panel.scrollWidth - panel.clientWidth : Number.NaN;
      });
      assert.equal(overflow, 0, 'the Workloads table fits its panel');
    } finally {
      await view.done();
    }
  });

  it('alice (pods in dev only) sees none of the demo pods', async () => {
    const view = await openWorkloadIdentity('alice');
    try {
      const panel = view.page.getByRole('table', { name: 'Workloads' }).or(view.page.getByText('No pods in the namespaces you may see.'));
      await panel.first().waitFor({ timeout: 20_000 });
      const namespaces = new Set((await view.rows()).map((r) => r.namespace));
      assert.deepEqual([...namespaces].filter((ns) => ns !== 'dev'), [], `alice sees dev only: ${[...namespaces].join(', ')}`);
    } finally {
      await view.done();
    }
  });
});
