import { X509Certificate, createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';

/** Debian's chromium; `.ci/run` installs it when missing. */
export const CHROMIUM = process.env['MESHID_CHROMIUM'] ?? '/usr/bin/chromium';
/** Screenshots are test artifacts (gitignored), one PNG per page a test looks at. */
export const SCREENSHOTS = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));
export const VIEWPORT = { width: 1280, height: 800 };

/**
 * The base64 SHA-256 of the public key an HTTPS server presents. Chromium is told to accept
 * exactly that key for the test (the playground's own CA is not in its trust store), which
 * keeps every other certificate check on.
 */
export function serverKeyPin(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false, servername: hostname === '127.0.0.1' ? '' : hostname }, () => {
      const { raw } = socket.getPeerCertificate();
      socket.end();
      if (!raw) return reject(new Error(`${url} presented no certificate`));
      // The pin is over the whole SubjectPublicKeyInfo, as Chromium computes it.
      const spki = new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
      resolve(createHash('sha256').update(spki).digest('base64'));
    });
    socket.setTimeout(5000, () => socket.destroy(new Error(`no TLS handshake with ${url} within 5 s`)));
    socket.on('error', reject);
  });
}

/** Headless Chromium; `trust` names HTTPS origins whose server key it accepts. */
export async function launchBrowser(options: { trust?: string[] } = {}): Promise<Browser> {
  const pins = await Promise.all((options.trust ?? []).filter((url) => url.startsWith('https:')).map(serverKeyPin));
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ['--no-sandbox', ...(pins.length > 0 ? [`--ignore-certificate-errors-spki-list=${pins.join(',')}`] : [])],
  });
}

export interface BrowserTab {
  page: Page;
  context: BrowserContext;
  /**
   * A failed request the test causes on purpose (an expired token's 401). Chromium reports
   * every failed load as a console error; this allows exactly one such report for the path.
   */
  expectFailedRequest(path: string, status: number): void;
  /** Console errors and uncaught exceptions so far, less the expected failed requests. */
  errors(): string[];
  /** Fails when the page logged any error. */
  assertNoErrors(): void;
  /** A full-page PNG under artifacts/screenshots/; answers its path. */
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

/** A fresh context (no cookies) at 1280x800 that records every console error of its pages. */
export async function openTab(browser: Browser): Promise<BrowserTab> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  const errors: string[] = [];
  const allowed: { path: string; status: number }[] = [];

  const expected = (message: ConsoleMessage): boolean => {
    const status = /the server responded with a status of (\d+)/.exec(message.text())?.[1];
    if (!status) return false;
    let path = '';
    try {
      path = new URL(message.location().url).pathname;
    } catch {
      return false;
    }
    const index = allowed.findIndex((a) => a.path === path && String(a.status) === status);
    if (index < 0) return false;
    allowed.splice(index, 1);
    return true;
  };

  page.on('console', (message) => {
    if (message.type() === 'error' && !expected(message)) errors.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));

  return {
    page,
    context,
    expectFailedRequest: (path, status) => void allowed.push({ path, status }),
    errors: () => [...errors],
    assertNoErrors() {
      if (errors.length > 0) throw new Error(`the page logged ${errors.length} error(s):\n${errors.join('\n')}`);
    },
    async screenshot(name) {
      await mkdir(SCREENSHOTS, { recursive: true });
      const path = join(SCREENSHOTS, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    close: () => context.close(),
  };
}
