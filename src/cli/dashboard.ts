import { spawn } from 'node:child_process';
import { MeshidError } from '../core/index.ts';
import { connect } from './connect.ts';
import { login } from './session.ts';
import type { GlobalOptions } from './globals.ts';
import { serviceProxyUpstream, startDashboardProxy, type DashboardUpstream, type RunningDashboardProxy } from './dashboard-proxy.ts';
import { findMeshidPod, portForwardUpstream } from './dashboard-port-forward.ts';

export interface DashboardOptions {
  url?: string | undefined;
  insecureSkipTlsVerify?: boolean | undefined;
  portForward?: boolean | undefined;
  port: number;
  browser: boolean;
}

/** `--port`: 0 (any free port) to 65535. */
export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new MeshidError('ERR_INVALID_ARGUMENT', `--port must be a number from 0 to 65535, not "${value}"`);
  return port;
}

/**
 * `meshid dashboard`: logs in and hands the session to a browser. With `--url` (or a server
 * the context remembers) the browser goes straight there; otherwise a local proxy on
 * 127.0.0.1 reaches meshid through the apiserver's service proxy (default) or a port-forward
 * to one of its pods, and runs until interrupted. Tokens are never written anywhere but the
 * handoff URL, which is printed or handed to the browser.
 */
export async function runDashboard(globals: GlobalOptions, options: DashboardOptions): Promise<void> {
  if (options.portForward && options.url) throw new MeshidError('ERR_INVALID_ARGUMENT', '--port-forward and --url exclude each other');
  const conn = await connect(globals, { url: options.url, insecureSkipTlsVerify: options.insecureSkipTlsVerify, serviceProxy: !!options.portForward });
  if (conn.mode === 'url') {
    const result = await login(conn);
    hand(new URL(`/api/login?wrapped-token=${encodeURIComponent(result.wrappedToken)}`, conn.base).toString(), result.user.name, options.browser);
    return;
  }

  let upstream: DashboardUpstream;
  let via: string;
  if (options.portForward) {
    const pod = await findMeshidPod(conn.kc, globals.namespace);
    const ca = conn.extension['certificate-authority-data'];
    upstream = portForwardUpstream(conn.kc, globals.namespace, pod, ca ? { ca: Buffer.from(ca, 'base64').toString('utf8') } : {});
    via = `a port-forward to pod ${globals.namespace}/${pod}`;
  } else {
    upstream = serviceProxyUpstream(conn.kc, globals.namespace);
    via = `the apiserver's service proxy to ${globals.namespace}/meshid`;
  }
  // Listen before logging in: a busy port must not cost a wrapped token.
  const proxy = await startDashboardProxy(upstream, { port: options.port });
  try {
    // Port-forward: log in through the tunnel, as the browser will. Service proxy: the
    // connection already goes there, with meshid's token in X-Authorization.
    const loginConn = options.portForward ? await connect(globals, { url: proxy.origin }) : conn;
    const result = await login(loginConn);
    process.stderr.write(`Dashboard proxy on ${proxy.origin}, through ${via}, as ${result.user.name}. Ctrl-C stops it.\n`);
    hand(`${proxy.origin}/api/login?wrapped-token=${encodeURIComponent(result.wrappedToken)}`, result.user.name, options.browser);
    await untilInterrupted();
  } finally {
    await closeQuietly(proxy);
  }
}

/** Prints the handoff URL (stdout, so it can be piped) or opens a browser on it. */
function hand(url: string, user: string, browser: boolean): void {
  if (!browser) {
    process.stderr.write('Open this URL within 10 seconds (it works once):\n');
    process.stdout.write(`${url}\n`);
    return;
  }
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  spawn(opener, [url], { stdio: 'ignore', detached: true })
    .on('error', () => {
      process.stderr.write(`Could not start ${opener}; open this URL within 10 seconds:\n`);
      process.stdout.write(`${url}\n`);
    })
    .unref();
  process.stderr.write(`Opened the dashboard as ${user}.\n`);
}

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function closeQuietly(proxy: RunningDashboardProxy): Promise<void> {
  await Promise.race([proxy.close(), new Promise((r) => setTimeout(r, 2000).unref())]);
}
