import { createServer, request as httpRequest, Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
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

export interface RunningDashboardProxy {
  /** http://127.0.0.1:<port> */
  origin: string;
  port: number;
  close(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) and those the proxy sets itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * A local HTTP proxy on 127.0.0.1 in front of meshid: the browser talks plain HTTP to it,
 * it adds the user's credentials and forwards. Cookies pass both ways, bodies stream (watches),
 * upgrades (exec) are relayed. It logs paths at most, never queries, headers or bodies: the
 * handoff URL carries a token.
 */
export async function startDashboardProxy(upstream: DashboardUpstream, options: { port: number; onError?: (line: string) => void }): Promise<RunningDashboardProxy> {
  const report = options.onError ?? ((line: string) => process.stderr.write(`${line}\n`));
  let port = options.port;
  // DNS rebinding: a page from another site that resolves its name to 127.0.0.1 must not
  // reach the user's credentials, so only the loopback names are served.
  const allowed = (host: string | undefined): boolean => host === `127.0.0.1:${port}` || host === `localhost:${port}` || host === `[::1]:${port}`;
  const pathOnly = (url: string | undefined): string => (url ?? '/').split('?')[0] ?? '/';

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
      socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
  });
  // Watches and exec sessions run as long as they like.
  server.requestTimeout = 0;
  server.timeout = 0;

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!allowed(req.headers.host)) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' }).end(`meshid dashboard proxy: open http://127.0.0.1:${port}\n`);
      return;
    }
    const target = await upstream.prepare(localPath(req.url));
    const headers = { ...outgoingHeaders(req.headers, upstream.moveAuthorization), ...target.headers };
    const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const up = send(target.url, { method: req.method ?? 'GET', headers, agent: target.agent });
    const origin = `http://${req.headers.host ?? `127.0.0.1:${port}`}`;
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

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (!allowed(req.headers.host)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const target = await upstream.prepare(localPath(req.url));
    const headers: OutgoingHttpHeaders = {
      ...outgoingHeaders(req.headers, upstream.moveAuthorization),
      ...target.headers,
      connection: 'Upgrade',
      upgrade: req.headers.upgrade ?? 'websocket',
    };
    const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const up = send(target.url, { method: req.method ?? 'GET', headers, agent: target.agent });
    socket.on('error', () => up.destroy());
    await new Promise<void>((resolve, reject) => {
      up.on('error', reject);
      up.on('upgrade', (answer: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
        socket.write(`HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? 'Switching Protocols'}\r\n${rawHeaderLines(answer.rawHeaders)}\r\n`);
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        upSocket.on('error', () => socket.destroy());
        socket.on('error', () => upSocket.destroy());
        upSocket.pipe(socket);
        socket.pipe(upSocket);
        resolve();
      });
      // No upgrade (a refusal, say): relay the answer and close.
      up.on('response', (answer) => {
        const back = incomingHeaders(answer.headers, upstream, `http://${req.headers.host ?? ''}`);
        const lines = Object.entries(back).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `${k}: ${x}`) : v === undefined ? [] : [`${k}: ${String(v)}`]));
        socket.write(`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}\r\n${lines.join('\r\n')}\r\nconnection: close\r\n\r\n`);
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
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        upstream.close?.();
      }),
  };
}

function localPath(url: string | undefined): string {
  const path = url ?? '/';
  if (!path.startsWith('/')) throw new MeshidError('ERR_INVALID_ARGUMENT', 'the dashboard proxy serves paths only');
  return path;
}

function outgoingHeaders(incoming: IncomingHttpHeaders, moveAuthorization: boolean): OutgoingHttpHeaders {
  const named = new Set(String(incoming.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    // Host is the upstream's; the apiserver sets X-Forwarded-*; the body must stay readable to map links back.
    if (name === 'host' || name === 'accept-encoding' || name.startsWith('x-forwarded-')) continue;
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
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
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

function rawHeaderLines(raw: string[]): string {
  let text = '';
  for (let i = 0; i + 1 < raw.length; i += 2) text += `${raw[i] ?? ''}: ${raw[i + 1] ?? ''}\r\n`;
  return text;
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
      const tls: { headers: Record<string, string>; ca?: unknown; cert?: unknown; key?: unknown; rejectUnauthorized?: boolean; servername?: string } = { headers: {} };
      await kc.applyToHTTPSOptions(tls as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
      const key = [tls.ca, tls.cert, tls.key, tls.rejectUnauthorized, tls.servername].map((v) => String(v)).join('\0');
      if (!agent || key !== agentKey) {
        // New material (a rotated client certificate): new connections; running ones finish.
        const material = {
          keepAlive: true,
          ...(tls.ca ? { ca: tls.ca as string } : {}),
          ...(tls.cert ? { cert: tls.cert as string } : {}),
          ...(tls.key ? { key: tls.key as string } : {}),
          ...(tls.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
          ...(tls.servername ? { servername: tls.servername } : {}),
        };
        agent = base.protocol === 'https:' ? new HttpsAgent(material) : new HttpAgent({ keepAlive: true });
        agentKey = key;
      }
      const headers: Record<string, string> = {};
      const auth = tls.headers['Authorization'] ?? tls.headers['authorization'];
      if (auth) headers['authorization'] = auth;
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
