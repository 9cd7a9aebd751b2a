import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { loadKubeConfig, readExtension } from '../../src/kube/index.ts';
import { call } from '../../src/cli/http.ts';
import { killDashboards, launchBrowser, openTab, refreshTarget, startDashboard, type RunningDashboard } from '../support/browser.ts';
import { testEnv } from '../support/env.ts';
import { within } from '../support/server.ts';
import { ownKubeconfig, playgroundServer } from '../support/session.ts';
import { OFF_NODE } from '../support/placement.ts';

const suffix = randomBytes(3).toString('hex');
/** A pod in alice's namespace and one elsewhere, so "dev only" is something to see. */
const pods = [
  { namespace: 'dev', name: `web-dev-${suffix}` },
  { namespace: 'default', name: `web-other-${suffix}` },
];

/**
 * `meshid dashboard --no-browser` as a sample user, in the playground's mode: its proxy goes
 * straight to the server the context remembers, over HTTPS verified with the playground's CA.
 */
async function dashboardFor(user: 'alice' | 'admin'): Promise<RunningDashboard & { link: URL }> {
  const dash = await startDashboard(['--kubeconfig', await ownKubeconfig(user), 'dashboard', '--no-browser', '--port', '0']);
  assert.match(dash.stderr(), new RegExp(`through ${testEnv().server.https.replace(/\/$/, '').replaceAll('.', '\\.')}\\. Ctrl-C stops it\\.`));
  const link = dash.link ?? assert.fail('no link on stdout');
  assert.match(link.href, /^http:\/\/[a-z2-7]{26}\.localhost:\d+\/\.meshid\/handoff\/[A-Za-z0-9_-]{22}$/);
  return { ...dash, link };
}

async function signedInAs(page: Page, user: string): Promise<void> {
  await page.getByTestId('user-name').filter({ hasText: user }).waitFor({ timeout: 15_000 });
}

async function openPage(page: Page, title: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: title, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: title }).waitFor();
}

/** Waits until no panel says Loading… (bounded): screenshots show answers, not spinners. */
async function settled(page: Page): Promise<void> {
  await page.getByText('Loading…').first().waitFor({ state: 'detached', timeout: 15_000 }).catch(() => undefined);
  await page.getByText('Building the plan…').first().waitFor({ state: 'detached', timeout: 15_000 }).catch(() => undefined);
}

async function whoamiWithBearer(token: string): Promise<{ status: number; body: { name?: string; code?: string } }> {
  const server = await playgroundServer();
  const res = await call({ method: 'GET', url: new URL('/api/whoami', server.url), headers: { authorization: `Bearer ${token}` }, tls: { ca: server.ca } });
  return { status: res.status, body: res.body as { name?: string; code?: string } };
}

describe('dashboard in a browser (real playground, headless chromium)', () => {
  let browser: Browser;
  let admin: KubeConfig;

  before(async () => {
    admin = loadKubeConfig({ kubeconfig: testEnv().kubeconfigs.admin });
    const core = admin.makeApiClient(CoreV1Api);
    for (const pod of pods) {
      await core.createNamespacedPod({
        namespace: pod.namespace,
        body: { metadata: { name: pod.name }, spec: { ...OFF_NODE, containers: [{ name: 'app', image: 'registry.example.com/app:1' }] } },
      });
    }
    browser = await launchBrowser();
  });

  after(async () => {
    killDashboards();
    await browser?.close();
    const core = admin.makeApiClient(CoreV1Api);
    for (const pod of pods) await core.deleteNamespacedPod({ namespace: pod.namespace, name: pod.name, gracePeriodSeconds: 0 }).catch(() => undefined);
  });

  it('alice: lands logged in from meshid dashboard, sees rotate CA disabled with the missing permission, and workloads in dev only', async () => {
    const dash = await dashboardFor('alice');
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      await page.goto(dash.link.href);
      await signedInAs(page, 'alice');
      assert.equal(page.url(), `${dash.origin}/`, 'the handoff redirects to the dashboard on the local origin, and the token left the address bar');
      assert.deepEqual(await page.getByRole('list', { name: 'Groups' }).getByRole('listitem').allTextContents(), ['dev', 'system:authenticated']);
      await settled(page);
      await tab.screenshot('alice-overview');

      // Keyboard only: Tab to the Workload identity link, Enter opens it.
      let focused = '';
      for (let i = 0; i < 15 && focused !== 'Workload identity'; i++) {
        await page.keyboard.press('Tab');
        focused = (await page.locator(':focus').textContent()) ?? '';
      }
      assert.equal(focused, 'Workload identity', 'the link is reachable with Tab');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Workload identity' }).waitFor();
      assert.equal(new URL(page.url()).pathname, '/workload-identity');

      const rotate = page.getByRole('button', { name: 'Rotate CA' });
      assert.equal(await rotate.isDisabled(), true);
      const describedBy = await rotate.getAttribute('aria-describedby');
      assert.ok(describedBy, 'the disabled button points at its explanation');
      assert.equal(await page.locator(`[id="${describedBy}"]`).textContent(), 'Missing permission: update certificateauthorities.meshid.io');

      const table = page.getByRole('table', { name: 'Workloads' });
      await table.getByRole('cell', { name: pods[0]?.name ?? '', exact: true }).waitFor({ timeout: 15_000 });
      const namespaces = await table.locator('tbody tr td:first-child').allTextContents();
      assert.ok(namespaces.length > 0);
      assert.deepEqual([...new Set(namespaces)], ['dev'], `alice sees only dev: ${namespaces.join(', ')}`);
      assert.equal(await table.getByRole('cell', { name: pods[1]?.name ?? '', exact: true }).count(), 0);
      await settled(page);
      await tab.screenshot('alice-workload-identity');

      await openPage(page, 'Tokens');
      await settled(page);
      assert.equal(await page.getByRole('button', { name: 'Issue token' }).isDisabled(), true);
      await tab.screenshot('alice-tokens');
      tab.assertNoErrors();
    } finally {
      await tab.close();
      assert.equal(await dash.stop(), 0, dash.stderr());
    }
  });

  it('admin: issues a user token in the UI, revokes it there, and the API refuses it afterwards', async () => {
    const dash = await dashboardFor('admin');
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      await page.goto(dash.link.href);
      await signedInAs(page, 'admin');
      await settled(page);
      await tab.screenshot('admin-overview');

      await openPage(page, 'Tokens');
      const name = `ui-${suffix}`;
      await page.getByRole('textbox', { name: 'Name', exact: true }).fill(name);
      await page.getByRole('textbox', { name: /^Groups/ }).fill('qa');
      await page.getByRole('textbox', { name: 'Valid for', exact: true }).fill('1h');
      await page.getByRole('button', { name: 'Issue token' }).click();
      const issued = page.getByRole('textbox', { name: 'Token', exact: true });
      await issued.waitFor({ timeout: 15_000 });
      const token = await issued.inputValue();
      assert.equal(token.split('.').length, 3, 'a JWT');

      const before = await whoamiWithBearer(token);
      assert.equal(before.status, 200, JSON.stringify(before.body));
      assert.equal(before.body.name, `mesh-system:${name}`, 'a user token is impersonated under the identity prefix');
      await settled(page);
      await tab.screenshot('admin-tokens');

      const id = (await page.getByTestId('issued-token-id').textContent()) ?? '';
      await page.getByRole('button', { name: 'Revoke this token' }).click();
      await page.getByRole('status').filter({ hasText: `Revoked ${id}` }).waitFor({ timeout: 15_000 });
      await page.getByRole('list', { name: 'Revoked token IDs' }).getByText(id, { exact: true }).waitFor({ timeout: 15_000 });

      // Revocation reaches the server through a watched Secret.
      let last = before;
      const took = await within(15_000, async () => {
        last = await whoamiWithBearer(token);
        return last.status === 401;
      });
      assert.ok(took !== undefined, `the revoked token still worked after 15 s: ${JSON.stringify(last.body)}`);
      assert.equal(last.body.code, 'token-revoked');

      for (const title of ['Workload identity', 'Recovery', 'Registries']) {
        await openPage(page, title);
        await settled(page);
        await tab.screenshot(`admin-${title.toLowerCase().replace(/ /g, '-')}`);
      }
      assert.equal(await page.getByRole('button', { name: 'Add registry' }).isDisabled(), false, 'admin may add registries');
      tab.assertNoErrors();
    } finally {
      await tab.close();
      assert.equal(await dash.stop(), 0, dash.stderr());
    }
  });

  it("#13.4: alice's session cookie stays on the proxy's own name; another program on 127.0.0.1 gets nothing, as 127.0.0.1 or as localhost", async () => {
    // Another local app: a plain server on another port that records what browsers send it.
    const received: { host: string; path: string; cookie: string }[] = [];
    const other = createServer((req, res) => {
      received.push({ host: req.headers.host ?? '', path: req.url ?? '', cookie: req.headers.cookie ?? '' });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<p>another local app</p>');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const port = (other.address() as AddressInfo).port;
    const dash = await dashboardFor('alice');
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      const own: Promise<string>[] = [];
      page.on('request', (request) => {
        if (request.url().startsWith(`${dash.origin}/api/graphql`)) own.push(request.allHeaders().then((h) => h['cookie'] ?? ''));
      });
      await page.goto(dash.link.href);
      await signedInAs(page, 'alice');
      await settled(page);

      // The dashboard's own calls carry the session: the attack below could see it if it leaked.
      const mine = await Promise.all(own);
      assert.ok(mine.length > 0 && mine.every((cookie) => /(^|; )meshid_session=/.test(cookie) && /(^|; )meshid_csrf=/.test(cookie)), `cookies of the dashboard's own API calls: ${mine.map((c) => c.replace(/=[^;]*/g, '')).join(' | ')}`);
      const stored = await tab.context.cookies();
      assert.deepEqual([...new Set(stored.filter((c) => c.name.startsWith('meshid_')).map((c) => c.domain))], [new URL(dash.origin).hostname], 'host-only cookies of the random name');

      tab.assertNoErrors();
      for (const base of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
        // The other app's own page in the same browser, opened and fetching itself with credentials...
        const attacker = await tab.context.newPage();
        await attacker.goto(`${base}/page`);
        await attacker.evaluate(async (url) => void (await fetch(url, { credentials: 'include' })), `${base}/fetch`);
        await attacker.close();
        // ...and the dashboard's tab sent there. (Its CSP keeps its own scripts from fetching anywhere else.)
        await page.goto(`${base}/from-dashboard`);
      }
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
        assert.deepEqual(
          ['/page', '/fetch', '/from-dashboard'].filter((path) => received.some((r) => r.host === host && r.path === path)),
          ['/page', '/fetch', '/from-dashboard'],
          `the other app was reached as ${host}: ${JSON.stringify(received)}`,
        );
      }
      const leaked = received.filter((r) => /meshid_(session|csrf)=/.test(r.cookie));
      assert.deepEqual(leaked, [], 'no meshid cookie reached another port');
    } finally {
      await tab.close();
      other.close();
      assert.equal(await dash.stop(), 0, dash.stderr());
    }
  });

  it('#13.7: meshid dashboard opens the browser through a 0600 file: the opener sees its path only, Chromium following it lands as alice, Ctrl-C removes it', async () => {
    // A fake xdg-open first on PATH records its argv; a runtime dir of the test's own holds the file.
    const bin = await mkdtemp(join(tmpdir(), 'meshid-opener-'));
    const runtime = await mkdtemp(join(tmpdir(), 'meshid-runtime-'));
    const argvFile = join(bin, 'argv');
    await writeFile(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s\\0' "$@" > '${argvFile}.tmp' && mv '${argvFile}.tmp' '${argvFile}'\n`, { mode: 0o700 });
    const kubeconfig = await ownKubeconfig('alice');
    const dash = await startDashboard(['--kubeconfig', kubeconfig, 'dashboard', '--port', '0'], {
      env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}`, XDG_RUNTIME_DIR: runtime },
    });
    const tab = await openTab(browser);
    try {
      let recorded = '';
      await within(10_000, async () => (recorded = await readFile(argvFile, 'utf8').catch(() => '')) !== '');
      const argv = recorded.split('\0').slice(0, -1);
      assert.equal(argv.length, 1, `one argument: ${JSON.stringify(argv)}`);
      const file = argv[0] ?? '';
      assert.match(file, new RegExp(`^${runtime}/meshid-dashboard-[^/]+/open\\.html$`));
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await stat(dirname(file))).mode & 0o777, 0o700);
      const link = refreshTarget(await readFile(file, 'utf8'));
      assert.match(link, new RegExp(`^${dash.origin.replaceAll('.', '\\.')}/\\.meshid/handoff/[A-Za-z0-9_-]{22}$`));
      assert.equal(dash.stdout(), '', 'with a browser, the link goes nowhere but the file');

      const wrapped: string[] = [];
      tab.page.on('request', (request) => {
        const token = new URL(request.url()).searchParams.get('wrapped-token');
        if (token) wrapped.push(token);
      });
      await tab.page.goto(pathToFileURL(file).href);
      await signedInAs(tab.page, 'alice');
      assert.equal(tab.page.url(), `${dash.origin}/`);
      const idToken = (await readExtension(kubeconfig, loadKubeConfig({ kubeconfig }).getCurrentContext())).token ?? '';
      assert.equal(wrapped.length, 1, 'one wrapped token, made when the browser arrived');
      const code = link.split('/').at(-1) ?? '';
      for (const [what, secret] of [['handoff code', code], ['wrapped token', wrapped[0] ?? ''], ['ID token', idToken]] as const) {
        assert.ok(secret.length >= 22, `${what} is known to the test`);
        assert.ok(!recorded.includes(secret), `the opener's argv holds no ${what}`);
      }
      tab.assertNoErrors();

      assert.equal(await dash.stop(), 0, dash.stderr());
      await assert.rejects(stat(dirname(file)), { code: 'ENOENT' }, 'Ctrl-C removed the file and its directory');
    } finally {
      await tab.close();
      await rm(bin, { recursive: true, force: true });
      await rm(runtime, { recursive: true, force: true });
    }
  });
});
