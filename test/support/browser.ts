import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { MESHID_BIN } from './cli.ts';

/** Debian's chromium; `.ci/run` installs it when missing. */
export const CHROMIUM = process.env['MESHID_CHROMIUM'] ?? '/usr/bin/chromium';
/** Screenshots are test artifacts (gitignored), one PNG per page a test looks at. */
export const SCREENSHOTS = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));
export const VIEWPORT = { width: 1280, height: 800 };

/**
 * Headless Chromium with every certificate check on. It never meets a certificate: the
 * dashboard is opened through `meshid dashboard`'s proxy at `http://<random>.localhost`,
 * which Chromium resolves to loopback itself and treats as a secure context. Playwright's
 * default flags keep background networking off, so nothing leaves the machine.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ['--no-sandbox'],
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

/** A running `meshid dashboard`: the browser's only way to the dashboard. */
export interface RunningDashboard {
  child: ChildProcess;
  /** http://<random>.localhost:<port>, from its stderr. */
  origin: string;
  /** <random>.localhost:<port> */
  host: string;
  port: number;
  /** The one-time handoff link it printed (with --no-browser), else undefined. */
  link: URL | undefined;
  stdout(): string;
  stderr(): string;
  /** SIGINT (Ctrl-C), then the exit code (bounded). */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Kills what `startDashboard` started and a test left running (for `after` hooks). */
export function killDashboards(): void {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  running.clear();
}

/**
 * Starts `meshid <args>` (a `dashboard` command) and waits (bounded) until its proxy listens
 * and, with --no-browser, the handoff link is on stdout.
 */
export async function startDashboard(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<RunningDashboard> {
  const child = spawn(process.execPath, [MESHID_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const printsLink = args.includes('--no-browser');
  const ready = (): boolean => /Ctrl-C stops it\.\n/.test(err) && (!printsLink || out.includes('\n'));
  for (let waited = 0; !ready() && child.exitCode === null && waited < 30_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  if (!ready()) {
    child.kill('SIGKILL');
    throw new Error(`meshid ${args.join(' ')} did not start its proxy within 30 s (exit ${String(child.exitCode)}):\n${err}`);
  }
  const origin = /^Dashboard proxy on (http:\/\/\S+), /m.exec(err)?.[1] ?? '';
  const { host, port } = new URL(origin);
  return {
    child,
    origin,
    host,
    port: Number(port),
    link: printsLink ? new URL(out.split('\n')[0] ?? '') : undefined,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      running.delete(child);
      return code;
    },
  };
}

export interface ProxyAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A request from Node to the dashboard proxy: to 127.0.0.1 with the proxy's Host (or the
 * one the test sends). Nothing in Node resolves a `.localhost` name, which could mean a DNS
 * query.
 */
export function proxyRequest(
  dashboard: Pick<RunningDashboard, 'host' | 'port'>,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<ProxyAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: dashboard.port, path, method: options.method ?? 'GET', headers: { host: dashboard.host, ...options.headers } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer to ${path} within 30 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Where a page's meta refresh leads (the launch file, the proxy's handoff page), entities decoded. */
export function refreshTarget(html: string): string {
  const raw = /<meta http-equiv="refresh" content="0;url=([^"]*)">/.exec(html)?.[1];
  if (raw === undefined) throw new Error(`no meta refresh in ${html.slice(0, 200)}`);
  return raw.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
}
