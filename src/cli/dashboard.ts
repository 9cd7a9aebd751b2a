import { MeshidError } from '../core/index.ts';
import { connect, type Connection } from './connect.ts';
import { call } from './http.ts';
import { login } from './session.ts';
import type { GlobalOptions } from './globals.ts';
import { serviceProxyUpstream, startDashboardProxy, urlUpstream, type DashboardUpstream, type ProxyAddress, type RunningDashboardProxy } from './dashboard-proxy.ts';
import { findMeshidPod, portForwardUpstream } from './dashboard-port-forward.ts';
import { openFile, writeLaunchFile, type LaunchFile } from './browser-open.ts';

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
 * `meshid dashboard`: a local proxy on 127.0.0.1 that the browser reaches as
 * `http://<random>.localhost:<port>`, in every mode: through the apiserver's service proxy
 * (default), a port-forward to a meshid pod, or straight at `--url` / the server the context
 * remembers. The browser never talks to meshid itself, so its cookies belong to a host name
 * nothing else uses, and it meets no certificate. The login happens when the browser opens
 * the one-time handoff link; runs until interrupted.
 */
export async function runDashboard(globals: GlobalOptions, options: DashboardOptions): Promise<void> {
  if (options.portForward && options.url) throw new MeshidError('ERR_INVALID_ARGUMENT', '--port-forward and --url exclude each other');
  const conn = await connect(globals, { url: options.url, insecureSkipTlsVerify: options.insecureSkipTlsVerify, serviceProxy: !!options.portForward });

  let upstream: DashboardUpstream;
  let via: string;
  if (conn.mode === 'url') {
    upstream = urlUpstream(conn.base, directTls(conn, options.insecureSkipTlsVerify));
    via = conn.base.origin;
  } else if (options.portForward) {
    const pod = await findMeshidPod(conn.kc, globals.namespace);
    const ca = rememberedCa(conn);
    upstream = portForwardUpstream(conn.kc, globals.namespace, pod, {
      ...(ca ? { ca } : {}),
      // A tunnel failed: stay on the pod while it is Ready, else move to one that is.
      repick: (current) => findMeshidPod(conn.kc, globals.namespace, current),
      onSwitch: (from, to) => process.stderr.write(`Pod ${globals.namespace}/${from} no longer answers; port-forwarding to pod ${globals.namespace}/${to}.\n`),
    });
    via = `a port-forward to pod ${globals.namespace}/${pod}`;
  } else {
    upstream = serviceProxyUpstream(conn.kc, globals.namespace);
    via = `the apiserver's service proxy to ${globals.namespace}/meshid`;
  }

  const proxy = await startDashboardProxy(upstream, {
    port: options.port,
    // Logs in through the proxy, exactly as the browser's requests will go.
    handoff: async (address) => {
      const result = await login(throughProxy(conn, address));
      process.stderr.write(`Logged in as ${result.user.name}; the browser takes the session over.\n`);
      return result.wrappedToken;
    },
  });
  // Ctrl-C from here on stops the proxy and removes the launch file, however early it comes.
  const interrupted = untilInterrupted();
  let launch: LaunchFile | undefined;
  try {
    process.stderr.write(`Dashboard proxy on ${proxy.origin}, through ${via}. Ctrl-C stops it.\n`);
    if (options.browser) launch = await openBrowser(proxy.handoffUrl);
    else printLink(proxy.handoffUrl, 'Open this link in a browser (it works once, while this command runs):');
    await interrupted;
  } finally {
    await closeQuietly(proxy);
    await launch?.remove();
  }
}

/** The meshid CA (PEM) the context remembers, if it remembers one. */
function rememberedCa(conn: Connection): string | undefined {
  const data = conn.extension['certificate-authority-data'];
  return data ? Buffer.from(data, 'base64').toString('utf8') : undefined;
}

/** TLS toward a meshid URL, as `meshid login` uses it: the remembered CA, and no check at all with --insecure-skip-tls-verify. */
function directTls(conn: Connection, insecure: boolean | undefined): { ca?: string; rejectUnauthorized?: boolean } {
  const ca = rememberedCa(conn);
  return { ...(ca ? { ca } : {}), ...(insecure ? { rejectUnauthorized: false } : {}) };
}

/**
 * The CLI's connection, sent through the local proxy: to 127.0.0.1 with the proxy's own
 * Host, so nothing on this side ever resolves the `.localhost` name.
 */
function throughProxy(conn: Connection, proxy: ProxyAddress): Connection {
  const loopback = new URL(`http://127.0.0.1:${proxy.port}`);
  return {
    ...conn,
    mode: 'url',
    base: new URL(proxy.origin),
    send: (method, path, o = {}) => {
      const bearer = o.sessionToken ?? (o.kubeBearer && conn.credential.type === 'bearer' ? conn.credential.token : undefined);
      return call({ method, url: new URL(path, loopback), headers: { host: proxy.host, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) }, body: o.body });
    },
  };
}

/** Prints the handoff link on stdout (the user's own, and pipeable). */
function printLink(url: string, why: string): void {
  process.stderr.write(`${why}\n`);
  process.stdout.write(`${url}\n`);
}

/**
 * Opens the browser on a 0600 launch file that leads to the link: the opener's command line
 * is readable by every local user, so it holds the file's path, never the link.
 */
async function openBrowser(url: string): Promise<LaunchFile> {
  const launch = await writeLaunchFile(url);
  openFile(launch.path, (opener) => printLink(url, `Could not start ${opener}; open this link in a browser (it works once):`));
  process.stderr.write('Opening the dashboard in your browser.\n');
  return launch;
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
