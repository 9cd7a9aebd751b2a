import { request as httpsRequest } from 'node:https';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { MeshidError } from '../core/index.ts';
import { KUBE_REQUEST_TIMEOUT_MS, endSocket, endToEndHeaders, impersonationHeaders, relayUpgrade, upgradeHeaders } from '../kube/index.ts';
import type { Identity } from '../authn/index.ts';
import type { Upstream } from './upstream.ts';

export const K8S_PREFIX = '/api/k8s';

/** A request for the Kubernetes proxy: the prefix itself, a path under it, or a query on it. */
export function isK8sProxyUrl(url: string): boolean {
  return url === K8S_PREFIX || url.startsWith(`${K8S_PREFIX}/`) || url.startsWith(`${K8S_PREFIX}?`);
}

/** Besides hop-by-hop headers: what the proxy sets itself, and credentials that must never reach the apiserver. */
const DROPPED = new Set([
  'host',
  'authorization',
  'x-authorization',
  'cookie',
  'x-csrf-token',
  'content-length',
]);
/** Request-header authentication names; never honoured without a front-proxy cert, but drop anyway. */
const DROPPED_PREFIXES = ['impersonate-', 'x-remote-'];

/** Maps /api/k8s/<rest> to /<rest>; refuses dot segments so the path means what it says. */
export function upstreamPath(url: string): string {
  if (!url.startsWith(K8S_PREFIX)) throw new MeshidError('ERR_NOT_FOUND', 'not a Kubernetes proxy path');
  const rest = url.slice(K8S_PREFIX.length) || '/';
  if (!rest.startsWith('/') && !rest.startsWith('?')) throw new MeshidError('ERR_NOT_FOUND', 'not a Kubernetes proxy path');
  const pathOnly = rest.split('?')[0] ?? '';
  const segments = pathOnly.split('/').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  if (segments.some((s) => s === '..' || s === '.')) throw new MeshidError('ERR_INVALID_ARGUMENT', 'dot segments are not allowed in proxied paths');
  return rest.startsWith('?') ? `/${rest}` : rest;
}

function outgoingHeaders(incoming: IncomingHttpHeaders, user: Identity | undefined, upstream: Upstream, upgrade: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(endToEndHeaders(incoming))) {
    if (DROPPED.has(name) || DROPPED_PREFIXES.some((p) => name.startsWith(p))) continue;
    headers[name] = value;
  }
  if (incoming['content-length'] !== undefined) headers['content-length'] = incoming['content-length'];
  if (upgrade) Object.assign(headers, upgradeHeaders(incoming));
  const auth = upstream.authorization();
  if (auth) headers['authorization'] = auth;
  if (user) Object.assign(headers, impersonationHeaders(user));
  return headers;
}

/** Answer headers never relayed besides hop-by-hop ones: cookies a proxied Service or Pod would plant on meshid's origin. */
const DROPPED_ANSWER = new Set(['set-cookie', 'set-cookie2']);

/**
 * The `services/<name>/proxy`, `pods/<name>/proxy` and `nodes/<name>/proxy` paths relay whatever a workload answers,
 * HTML included, and it would run on the dashboard's origin, next to the session. Every
 * answer is therefore a sandboxed document (an opaque origin: no script, no cookies, no
 * storage of meshid's) whose type the browser may not guess. API answers are JSON, which
 * neither header changes.
 */
export const PROXIED_ANSWER_HEADERS = { 'content-security-policy': 'sandbox', 'x-content-type-options': 'nosniff' } as const;

function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(endToEndHeaders(headers))) {
    if (!DROPPED_ANSWER.has(name)) out[name] = value;
  }
  return { ...out, ...PROXIED_ANSWER_HEADERS };
}

/** Watches, followed logs and the like: answers that trickle and must not wait for a buffer. */
export function isStreaming(path: string): boolean {
  const query = new URLSearchParams(path.split('?')[1] ?? '');
  return ['watch', 'follow'].some((k) => ['true', '1'].includes(query.get(k) ?? '')) || /\/watch\//.test(path);
}

/**
 * The apiserver must accept the connection and, once it has the whole request, start
 * answering within `ms`; otherwise the call fails with ETIMEDOUT, which the caller turns
 * into a 503. What is not bounded here: a client slowly sending its body (the listener's
 * request timeout bounds that) and an answer that streams for long (a watch may).
 */
function answerDeadline(out: ClientRequest, ms: number = KUBE_REQUEST_TIMEOUT_MS): void {
  let timer: NodeJS.Timeout | undefined;
  let sent = false;
  const disarm = (): void => clearTimeout(timer);
  const arm = (): void => {
    disarm();
    timer = setTimeout(() => out.destroy(Object.assign(new Error(`kube-apiserver did not answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
    timer.unref();
  };
  arm();
  out.on('socket', (socket: Socket) => {
    const connected = (): void => {
      if (!sent) disarm();
    };
    // A pooled keep-alive socket is connected already; a new one is after its TLS handshake.
    if (socket.connecting) socket.once('secureConnect', connected);
    else connected();
  });
  out.on('finish', () => {
    sent = true;
    arm();
  });
  for (const event of ['response', 'upgrade', 'close']) out.on(event, disarm);
}

/**
 * Streams one request to the apiserver as `user` and the answer back, so watches and
 * large lists flow without buffering. A client that goes away cancels the upstream call.
 */
export function proxyRequest(req: IncomingMessage, res: ServerResponse, path: string, user: Identity | undefined, upstream: Upstream, onUnavailable: (error: Error) => void): void {
  const out = httpsRequest(
    { protocol: 'https:', hostname: upstream.url.hostname, port: upstream.url.port, method: req.method, path, agent: upstream.agent, headers: outgoingHeaders(req.headers, user, upstream, false) },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, responseHeaders(answer.headers));
      // A watch may not send a body byte for minutes: its headers go now, and the listener's
      // idle timeout must not cut it. Anything else sends them with the first chunk, one
      // write instead of two (writes are syscalls).
      if (isStreaming(path)) {
        res.flushHeaders();
        req.socket.setTimeout(0);
      }
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    },
  );
  answerDeadline(out);
  out.on('error', (error) => {
    if (!res.headersSent) onUnavailable(error);
    else res.destroy();
  });
  res.on('close', () => {
    if (!res.writableFinished) out.destroy();
  });
  req.pipe(out);
}

/**
 * Connection upgrades (websocket or SPDY, used by exec, attach and port-forward): the
 * request goes up with impersonation; on 101 the two sockets are joined byte for byte.
 */
export function proxyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string, user: Identity | undefined, upstream: Upstream, onUnavailable: (error: Error) => void): void {
  let answered = false;
  const out = httpsRequest({
    protocol: 'https:',
    hostname: upstream.url.hostname,
    port: upstream.url.port,
    method: req.method,
    path,
    agent: false,
    ...upstream.tls,
    headers: outgoingHeaders(req.headers, user, upstream, true),
  });
  answerDeadline(out);
  out.on('upgrade', () => (answered = true));
  relayUpgrade(out, socket, head, (answer) => {
    answered = true;
    // No upgrade (e.g. 403 from RBAC): relay the short answer whole, then close.
    const chunks: Buffer[] = [];
    answer.on('data', (c: Buffer) => chunks.push(c));
    answer.on('end', () => endSocket(socket, answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/json', ...PROXIED_ANSWER_HEADERS }, Buffer.concat(chunks)));
  });
  // No answer at all (apiserver down or past the deadline): the client gets a 503, as for any request.
  out.on('error', (error) => (answered ? socket.destroy() : onUnavailable(error)));
  out.end();
}
