import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { ManualClock } from '../../src/core/index.ts';
import { SessionTokens, StaticSessionKeys, WRAPPED_TTL_MS } from '../../src/authn/index.ts';
import { killDashboards, launchBrowser, openTab, proxyRequest, startDashboard, type RunningDashboard } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { ownKubeconfig, sessionKeys } from '../support/session.ts';

// The login window is what a browser sees at the dashboard without a session: paste what
// `meshid login` prints. The browser still reaches meshid only through `meshid dashboard`'s
// proxy (its link is left unused), so the session cookie lands on the proxy's own name.
describe('dashboard login window (real playground, headless chromium)', () => {
  let browser: Browser;
  let dash: RunningDashboard;
  let origin: string;

  before(async () => {
    dash = await startDashboard(['--kubeconfig', await ownKubeconfig('bob'), 'dashboard', '--no-browser', '--port', '0']);
    origin = dash.origin;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    const code = await dash?.stop();
    killDashboards();
    assert.equal(code, 0, dash?.stderr());
  });

  it('logs bob in with the wrapped token meshid login prints', async () => {
    const tab = await openTab(browser);
    try {
      const { page } = tab;
      await page.goto(`${origin}/`);
      const field = page.getByLabel('Wrapped token');
      await field.waitFor();
      assert.match((await page.locator('.login-card .hint').textContent()) ?? '', /meshid login/, 'the window says which command prints the token');
      await tab.screenshot('login-window');

      const login = await runCli(['--kubeconfig', await ownKubeconfig('bob'), 'login']);
      assert.equal(login.code, 0, login.stderr);
      const wrapped = login.stdout.trim();
      assert.ok(wrapped.split('.').length === 5, 'a compact JWE on stdout');
      await field.fill(wrapped);
      await page.getByRole('button', { name: 'Log in' }).click();

      await page.getByTestId('user-name').filter({ hasText: 'bob' }).waitFor({ timeout: 15_000 });
      assert.ok((await page.getByRole('list', { name: 'Groups' }).getByRole('listitem').allTextContents()).includes('ops'));
      // The cookies outlive a reload: the session is the server's, not the page's.
      await page.reload();
      await page.getByTestId('user-name').filter({ hasText: 'bob' }).waitFor({ timeout: 15_000 });

      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByLabel('Wrapped token').waitFor();
      assert.match((await page.locator('.login-card').textContent()) ?? '', /logged out/i);
      tab.assertNoErrors();
    } finally {
      await tab.close();
    }
  });

  it('says clearly that an expired wrapped token has expired', async () => {
    // A genuinely expired token: meshid's own wrap, with the server's real session key, made
    // by a clock that stands one wrapped-token lifetime and a bit in the past.
    const login = await runCli(['--kubeconfig', await ownKubeconfig('bob'), 'login', '-o', 'json']);
    assert.equal(login.code, 0, login.stderr);
    const { token } = JSON.parse(login.stdout) as { token: string };
    const { keys } = await sessionKeys();
    const past = new ManualClock(Date.now() - WRAPPED_TTL_MS - 5_000);
    const stale = await new SessionTokens(new StaticSessionKeys(keys.map((k) => ({ kid: k.kid, secret: Buffer.from(k.key, 'base64url') }))), past).wrap(token);

    // The server's refusal is the 401 this test is about; Chromium logs it as a failed load.
    const direct = await proxyRequest(dash, '/api/login', { method: 'POST', headers: { 'content-type': 'application/json', origin }, body: JSON.stringify({ wrappedToken: stale }) });
    assert.equal(direct.status, 401);
    assert.equal((JSON.parse(direct.body) as { code: string }).code, 'wrapped-token-invalid');

    const tab = await openTab(browser);
    try {
      const { page } = tab;
      tab.expectFailedRequest('/api/login', 401);
      await page.goto(`${origin}/`);
      await page.getByLabel('Wrapped token').fill(stale);
      // Keyboard only: from the field, Tab reaches the button and Enter submits.
      await page.getByLabel('Wrapped token').focus();
      await page.keyboard.press('Tab');
      assert.equal(await page.locator(':focus').textContent(), 'Log in');
      await page.keyboard.press('Enter');

      const alert = page.getByRole('alert');
      await alert.waitFor({ timeout: 15_000 });
      assert.equal(await alert.getAttribute('data-code'), 'wrapped-token-invalid');
      assert.match((await alert.textContent()) ?? '', /expired/i);
      assert.match((await alert.textContent()) ?? '', /meshid login/);
      await tab.screenshot('login-window-expired');
      assert.equal(await page.getByTestId('user-name').count(), 0, 'still logged out');
      tab.assertNoErrors();
    } finally {
      await tab.close();
    }
  });
});
