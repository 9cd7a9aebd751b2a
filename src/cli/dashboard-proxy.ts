import { createServer, request as httpRequest, Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { endSocket, endToEndHeaders, kubeTlsAgent, kubeTransport, rawHead, relayUpgrade, upgradeHeaders } from '../kube/index.ts';
import { escapeHtml, redirectPage } from './browser-open.ts';
import { HTTPS_PORT, SERVICE_NAME } from '../install/index.ts';
import { FORWARDED_AUTH_HEADER } from '../server/index.ts';

/** Where the local dashboard proxy sends what the browser asks for. */
export interface DashboardUpstream {
  /** The upstream URL of a local path, the agent to reach it with, and credential headers to add. */
  prepare(localPath: string): Promise<{ url: URL; agent: HttpAgent; headers: Record<string, string> }>;
  /** A Location the upstream answered, as a path on the local origin; undefined when it points elsewhere. */
  toLocal(location: string): string | undefined;
  /** Rewrites links the upstream put into an HTML page back to local paths. */
  html?(text: string): string;
  /**
   * The apiserver's service proxy consumes `Authorization` itself, so a meshid token a local
   * client sends there travels on as `X-Authorization`.
   */
  moveAuthorization: boolean;
  close?(): void;
}

export interface DashboardProxyOptions {
  /** 0: any free port. */
  port: number;
  /**
   * Logs in and answers a fresh wrapped token. It runs when the browser first opens the
   * handoff URL, so the token's 10 seconds start when the browser is already there.
   */
  handoff(proxy: ProxyAddress): Promise<string>;
  onError?: (line: string) => void;
}

export interface ProxyAddress {
  /** http://<random>.localhost:<port>: the only origin the proxy serves. */
  origin: string;
  /** <random>.localhost:<port>: the only Host header it accepts. */
  host: string;
  /** Its port on 127.0.0.1. */
  port: number;
}

export interface RunningDashboardProxy extends ProxyAddress {
  /** `<origin>/.meshid/handoff/<code>`: works once, while the proxy runs. */
  handoffUrl: string;
  close(): Promise<void>;
}

/** Paths the proxy answers itself and never forwards. */
const LOCAL_PREFIX = '/.meshid/';
const HANDOFF_PREFIX = `${LOCAL_PREFIX}handoff/`;

/** The proxy's own pages and answers: never cached, never sniffed, no referrer, nothing runs. */
const LOCAL_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'content-security-policy': "default-src 'none'" };

/** RFC 4648 base32 in lower case: DNS-label characters only, 5 bits each. */
function base32(bytes: Buffer): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/**
 * A host name of the proxy's own: 128 random bits as one DNS label under `localhost`.
 * Browsers resolve every `*.localhost` name to loopback themselves (RFC 6761; Chromium's
 * host resolver answers it without a DNS query), treat `http://*.localhost` as a secure
 * context, and keep cookies per host name: what meshid sets here is sent to no other port
 * or program on 127.0.0.1.
 */
export function localhostName(random: Buffer = randomBytes(16)): string {
  return `${base32(random)}.localhost`;
}

/**
 * A local HTTP proxy on 127.0.0.1 in front of meshid, for a browser at
 * `http://<random>.localhost:<port>`: it adds the user's credentials and forwards. Cookies
 * pass both ways, bodies stream (watches), upgrades (exec) are relayed. It performs the
 * handoff itself when the browser arrives. It logs paths at most, never queries, headers or
 * bodies: the handoff path carries a code and the login URL a token.
 */
export async function startDashboardProxy(upstream: DashboardUpstream, options: DashboardProxyOptions): Promise<RunningDashboardProxy> {
  const report = options.onError ?? ((line: string) => process.stderr.write(`${line}\n`));
  const hostName = localhostName();
  let port = options.port;
  // The port is known once listening (--port 0).
  const address = (): ProxyAddress => ({ origin: `http://${hostName}:${port}`, host: `${hostName}:${port}`, port });
  // DNS rebinding, and every other program on this machine: only the proxy's own name is
  // served. A page elsewhere that resolves its name to 127.0.0.1 sends its own Host.
  const allowed = (host: string | undefined): boolean => host?.toLowerCase() === address().host;
  const pathOnly = (url: string | undefined): string => (url ?? '/').split('?')[0] ?? '/';
  const code = randomBytes(16).toString('base64url');
  // unused -> running (a login under way) -> used; a failed login goes back to unused.
  let handoffState: 'unused' | 'running' | 'used' = 'unused';

  const server = createServer((req, res) => {
    forward(req, res).catch((error: unknown) => {
      report(`dashboard proxy: ${req.method ?? 'GET'} ${pathOnly(req.url)}: ${error instanceof Error ? error.message : String(error)}`);
      // Mid-stream, the only honest signal left is a cut connection.
      if (res.headersSent) return void res.destroy();
      res.writeHead(error instanceof MeshidError && error.code === 'ERR_INVALID_ARGUMENT' ? 400 : 502, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(error instanceof MeshidError ? `${error.message}\n` : 'meshid dashboard proxy: the upstream did not answer\n');
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(req, socket, head).catch((error: unknown) => {
      report(`dashboard proxy: upgrade ${pathOnly(req.url)}: ${error instanceof Error ? error.message : String(error)}`);
      endSocket(socket, 502);
    });
  });
  // Watches and exec sessions run as long as they like.
  server.requestTimeout = 0;
  server.timeout = 0;

  /** What the upstream must know of the browser's origin, replacing anything a client sent. */
  const forwardedHeaders = (): Record<string, string> => ({ 'x-forwarded-host': address().host, 'x-forwarded-proto': 'http' });

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!allowed(req.headers.host)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' }).end('meshid dashboard proxy: open the address `meshid dashboard` printed\n');
      return;
    }
    const path = localPath(req.url);
    if (path.startsWith(LOCAL_PREFIX)) return serveLocal(req, res, path);
    const target = await upstream.prepare(path);
    const headers = { ...outgoingHeaders(req.headers, upstream.moveAuthorization), ...forwardedHeaders(), ...target.headers };
    const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const up = send(target.url, { method: req.method ?? 'GET', headers, agent: target.agent });
    const { origin } = address();
    await new Promise<void>((resolve, reject) => {
      up.on('error', reject);
      // The browser went away (a closed tab ends its watches): so does the upstream request.
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
        resolve();
      });
      up.on('response', (answer) => {
        const back = incomingHeaders(answer.headers, upstream, origin);
        const type = String(answer.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        const encoding = answer.headers['content-encoding'];
        if (upstream.html && type === 'text/html' && (!encoding || encoding === 'identity')) {
          const chunks: Buffer[] = [];
          answer.on('data', (c: Buffer) => chunks.push(c));
          answer.on('error', reject);
          answer.on('end', () => {
            const body = Buffer.from(upstream.html?.(Buffer.concat(chunks).toString('utf8')) ?? '', 'utf8');
            delete back['content-length'];
            res.writeHead(answer.statusCode ?? 502, { ...back, 'content-length': String(body.length) }).end(body);
          });
          return;
        }
        res.writeHead(answer.statusCode ?? 502, back);
        res.flushHeaders();
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      });
      req.pipe(up);
    });
  }

  /**
   * `/.meshid/handoff/<code>`: the first GET logs in and answers a page of this origin that
   * sends the browser, with a fresh wrapped token, on to meshid's own handoff. A page, not a
   * redirect: a redirect keeps the navigation's cross-site start (the launch file, another
   * app's link), and meshid refuses a cross-site handoff (login CSRF); the page's own
   * navigation is same-origin. The code works once: whoever opens it second (a leaked link, a
   * reload, Back) gets a page that says to run the command again.
   */
  async function serveLocal(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    req.resume();
    const given = path.startsWith(HANDOFF_PREFIX) ? pathOnly(path.slice(HANDOFF_PREFIX.length)) : '';
    if (!sameCode(given, code)) {
      return localAnswer(req, res, 404, 'handoff-unknown', 'This is not a dashboard link of this proxy', 'Run `meshid dashboard` and open the address it gives.');
    }
    if (req.method !== 'GET') {
      return localAnswer(req, res, 405, 'method-not-allowed', 'A dashboard link is opened with GET', 'Open the link in a browser.', { allow: 'GET' });
    }
    if (handoffState !== 'unused') {
      return localAnswer(req, res, 410, 'handoff-used', 'This dashboard link was already used', 'A link works once. Run `meshid dashboard` again for a new one.');
    }
    handoffState = 'running';
    let wrapped: string;
    try {
      wrapped = await options.handoff(address());
    } catch (error) {
      // Nothing was handed over: the same link may try again.
      handoffState = 'unused';
      const message = error instanceof MeshidError ? `${error.message}${error.hint ? ` (${error.hint})` : ''}` : 'the login failed';
      report(`dashboard proxy: handoff: ${error instanceof Error ? error.message : String(error)}`);
      return localAnswer(req, res, 502, 'handoff-failed', 'meshid dashboard could not log you in', `${message}. Reload this page to try again.`);
    }
    handoffState = 'used';
    res.writeHead(200, { ...LOCAL_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(redirectPage(`/api/login?wrapped-token=${encodeURIComponent(wrapped)}`));
  }

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (!allowed(req.headers.host)) {
      endSocket(socket, 403);
      return;
    }
    const path = localPath(req.url);
    if (path.startsWith(LOCAL_PREFIX)) {
      endSocket(socket, 404);
      return;
    }
    const target = await upstream.prepare(path);
    const headers: OutgoingHttpHeaders = {
      ...outgoingHeaders(req.headers, upstream.moveAuthorization),
      ...forwardedHeaders(),
      ...target.headers,
      ...upgradeHeaders(req.headers),
    };
    const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const up = send(target.url, { method: req.method ?? 'GET', headers, agent: target.agent });
    await new Promise<void>((resolve, reject) => {
      up.on('error', reject);
      up.on('upgrade', () => resolve());
      // No upgrade (a refusal, say): relay the answer and close.
      relayUpgrade(up, socket, head, (answer) => {
        const back = incomingHeaders(answer.headers, upstream, address().origin);
        socket.write(rawHead(answer.statusCode ?? 502, answer.statusMessage, { ...back, connection: 'close' }));
        answer.pipe(socket);
        resolve();
      });
      up.end();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new MeshidError('ERR_INVALID_ARGUMENT', `port ${options.port} on 127.0.0.1 is in use`, { hint: 'Pass --port <number>, or --port 0 for any free port.' }));
      } else if (error.code === 'EACCES') {
        reject(new MeshidError('ERR_INVALID_ARGUMENT', `may not listen on port ${options.port} on 127.0.0.1`, { hint: 'Pass --port <number> above 1023, or --port 0 for any free port.' }));
      } else reject(error);
    });
    // Loopback only; the browser reaches it by the name it resolves to loopback itself.
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    ...address(),
    handoffUrl: `${address().origin}${HANDOFF_PREFIX}${code}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        upstream.close?.();
      }),
  };
}

/** Constant time: the code is the one secret the proxy compares. */
function sameCode(given: string, code: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(code);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The proxy's own answers: a small page for a browser (it asks for text/html), RFC 9457
 * problem+json for everyone else, never cached.
 */
function localAnswer(req: IncomingMessage, res: ServerResponse, status: number, code: string, title: string, detail: string, extra: Record<string, string> = {}): void {
  const common = { ...LOCAL_HEADERS, ...extra };
  if (String(req.headers.accept ?? '').toLowerCase().includes('text/html')) {
    const body = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body><h1>${escapeHtml(title)}</h1>\n<p data-code="${code}">${escapeHtml(detail)}</p></body></html>\n`;
    res.writeHead(status, { ...common, 'content-type': 'text/html; charset=utf-8' }).end(body);
    return;
  }
  res.writeHead(status, { ...common, 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: `https://meshid.io/problems/${code}`, title, status, code, detail }));
}

function localPath(url: string | undefined): string {
  const path = url ?? '/';
  if (!path.startsWith('/')) throw new MeshidError('ERR_INVALID_ARGUMENT', 'the dashboard proxy serves paths only');
  return path;
}

function outgoingHeaders(incoming: IncomingHttpHeaders, moveAuthorization: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(endToEndHeaders(incoming))) {
    if (value === undefined) continue;
    // Host is the upstream's; the proxy sets X-Forwarded-* (and no client says Forwarded for
    // it); the body must stay readable to map links back.
    if (name === 'host' || name === 'accept-encoding' || name === 'forwarded' || name.startsWith('x-forwarded-')) continue;
    // The apiserver would act on these with the user's own credentials: nobody asked for that.
    if (name.startsWith('impersonate-')) continue;
    if (name === 'authorization') {
      if (moveAuthorization) {
        if (incoming[FORWARDED_AUTH_HEADER] === undefined) out[FORWARDED_AUTH_HEADER] = String(value);
      } else out[name] = String(value);
      continue;
    }
    out[name] = value;
  }
  out['accept-encoding'] = 'identity';
  return out;
}

function incomingHeaders(headers: IncomingHttpHeaders, upstream: DashboardUpstream, origin: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(endToEndHeaders(headers))) {
    if (value === undefined) continue;
    if (name === 'location' && typeof value === 'string') {
      const local = upstream.toLocal(value);
      out[name] = local === undefined ? value : `${origin}${local}`;
    } else if (name === 'set-cookie' && Array.isArray(value)) {
      // Cookies belong to the local origin: a Domain attribute would name the upstream's.
      out[name] = value.map((cookie) => cookie.replace(/;\s*domain=[^;]*/gi, ''));
    } else out[name] = value;
  }
  return out;
}

/**
 * Upstream through the kube-apiserver's service proxy to the meshid Service, with the user's
 * kube credentials exactly as kubectl sends them (client certificate or bearer, exec plugins
 * and auth-providers included; client-node caches what a plugin returns until it expires).
 */
export function serviceProxyUpstream(kc: KubeConfig, namespace: string): DashboardUpstream {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new MeshidError('ERR_KUBECONFIG', 'the kubeconfig has no server');
  const base = new URL(`${server.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/services/https:${SERVICE_NAME}:${HTTPS_PORT}/proxy`);
  const basePath = base.pathname;
  // The apiserver writes the prefix back with ':' as is; some writers escape it.
  const prefixes = [...new Set([basePath, basePath.replaceAll(':', '%3A'), basePath.replaceAll(':', '%3a')])];
  let agent: HttpAgent | undefined;
  let agentKey = '';
  return {
    moveAuthorization: true,
    async prepare(localPath) {
      const url = new URL(base.href + localPath);
      if (url.origin !== base.origin || !url.pathname.startsWith(`${basePath}/`)) {
        throw new MeshidError('ERR_INVALID_ARGUMENT', 'the dashboard proxy serves meshid only');
      }
      const transport = await kubeTransport(kc);
      if (!agent || transport.fingerprint !== agentKey) {
        // New material (a rotated client certificate): new connections; running ones finish.
        agent = base.protocol === 'https:' ? kubeTlsAgent(transport.tls) : new HttpAgent({ keepAlive: true });
        agentKey = transport.fingerprint;
      }
      const headers: Record<string, string> = {};
      if (transport.authorization) headers['authorization'] = transport.authorization;
      return { url, agent, headers };
    },
    toLocal(location) {
      let url: URL;
      try {
        url = new URL(location, base);
      } catch {
        return undefined;
      }
      if (url.origin !== base.origin) return undefined;
      for (const prefix of prefixes) {
        if (url.pathname === prefix) return `/${url.search}${url.hash}`;
        if (url.pathname.startsWith(`${prefix}/`)) return `${url.pathname.slice(prefix.length)}${url.search}${url.hash}`;
      }
      return undefined;
    },
    html(text) {
      let out = text;
      for (const prefix of prefixes) out = out.split(`${base.origin}${prefix}/`).join('/').split(`${prefix}/`).join('/');
      return out;
    },
    close() {
      agent?.destroy();
    },
  };
}

/** A Location on `origin` as a local path (query and fragment kept); undefined when it points elsewhere. */
export function pathOnOrigin(location: string, origin: string): string | undefined {
  try {
    const url = new URL(location, origin);
    return url.origin === origin ? `${url.pathname}${url.search}${url.hash}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Upstream straight at a meshid URL (`--url`, or the server the context remembers). Its
 * certificate is verified with the CA the context or the flags give, as `meshid login`
 * verifies it; the browser sees only the local origin, so it never meets that certificate.
 */
export function urlUpstream(base: URL, tls: { ca?: string; rejectUnauthorized?: boolean } = {}): DashboardUpstream {
  const origin = base.origin;
  const agent = base.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, ...tls }) : new HttpAgent({ keepAlive: true });
  return {
    moveAuthorization: false,
    prepare: (localPath) => Promise.resolve({ url: new URL(`${origin}${localPath}`), agent, headers: {} }),
    toLocal: (location) => pathOnOrigin(location, origin),
    close: () => agent.destroy(),
  };
}
