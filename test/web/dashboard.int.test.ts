import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Browser, Page } from 'playwright-core';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { launchBrowser, openTab } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { testEnv } from '../support/env.ts';
import { within } from '../support/server.ts';
import { ownKubeconfig } from '../support/session.ts';

const suffix = randomBytes(3).toString('hex');
/** A pod in alice's namespace and one elsewhere, so "dev only" is something to see. */
const pods = [
  { namespace: 'dev', name: `web-dev-${suffix}` },
  { namespace: 'default', name: `web-other-${suffix}` },
];

/** `meshid dashboard --no-browser` as a sample user: the handoff URL it prints. */
async function dashboardUrl(user: 'alice' | 'admin'): Promise<URL> {
  const res = await runCli(['--kubeconfig', await ownKubeconfig(user), 'dashboard', '--no-browser']);
  assert.equal(res.code, 0, res.stderr);
  const url = new URL(res.stdout.trim().split('\n')[0] ?? '');
  assert.equal(url.pathname, '/api/login');
  assert.ok(url.searchParams.get('wrapped-token'));
  return url;
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
  const res = await fetch(`${testEnv().server.http}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { name?: string; code?: string } };
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
        body: { metadata: { name: pod.name }, spec: { containers: [{ name: 'app', image: 'registry.example.com/app:1' }] } },
      });
    }
    // The playground's server has an HTTPS origin of its own CA; the browser trusts exactly its key.
    browser = await launchBrowser({ trust: [testEnv().server.https] });
  });

  after(async () => {
    await browser?.close();
    const core = admin.makeApiClient(CoreV1Api);
    for (const pod of pods) await core.deleteNamespacedPod({ namespace: pod.namespace, name: pod.name, gracePeriodSeconds: 0 }).catch(() => undefined);
  });

  it('alice: lands logged in from meshid dashboard, sees rotate CA disabled with the missing permission, and workloads in dev only', async () => {
    const url = await dashboardUrl('alice');
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      await page.goto(url.href);
      await signedInAs(page, 'alice');
      assert.equal(new URL(page.url()).pathname, '/', 'the handoff redirects to the dashboard');
      assert.ok(!page.url().includes('wrapped-token'), 'the token left the address bar');
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
    }
  });

  it('admin: issues a user token in the UI, revokes it there, and the API refuses it afterwards', async () => {
    const url = await dashboardUrl('admin');
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      await page.goto(url.href);
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
    }
  });
});
