import { STATUS_CODES, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

// The core both reverse proxies share (the server's /api/k8s and the CLI's dashboard proxy):
// which headers belong to one connection only, how an upgrade is relayed, and how an answer
// is written on a bare socket. What each proxy adds or refuses on top stays with it.

/** Hop-by-hop headers (RFC 9110 §7.6.1, plus the old Keep-Alive and Proxy-Connection): never forwarded. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * The end-to-end headers of a request or an answer: without the hop-by-hop ones and without
 * any a sender declared hop-by-hop by naming it in `Connection` (RFC 9110 §7.6.1).
 */
export function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The two headers an upgrade request needs on the next hop, taken from the client's request. */
export function upgradeHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  return { connection: 'Upgrade', upgrade: incoming.upgrade ?? 'websocket' };
}

/**
 * An HTTP/1.1 status line and headers, for a socket that left Node's HTTP machinery (an
 * upgrade request): `headers` as an object, or as Node's raw name/value list kept verbatim.
 */
export function rawHead(status: number, message: string | undefined, headers: OutgoingHttpHeaders | readonly string[]): string {
  const lines = [`HTTP/1.1 ${status} ${message || STATUS_CODES[status] || ''}`];
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) lines.push(`${String(headers[i])}: ${String(headers[i + 1])}`);
  } else {
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${String(one)}`);
    }
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** A short answer on a bare socket, which is then closed: a refused or failed upgrade. */
export function endSocket(socket: Duplex, status: number, headers: OutgoingHttpHeaders = {}, body: Buffer | string = ''): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  socket.end(Buffer.concat([Buffer.from(rawHead(status, undefined, { ...headers, 'content-length': String(bytes.length), connection: 'close' }), 'latin1'), bytes]));
}

/**
 * Relays an upgrade (websocket or SPDY: exec, attach, port-forward) sent as `out`: on 101 the
 * upstream's answer goes to the client as it came (its Connection and Upgrade are the point),
 * and the two sockets are joined byte for byte. Any other answer (an RBAC 403, say) goes to
 * `onRefused`, which answers the client.
 */
export function relayUpgrade(out: ClientRequest, socket: Duplex, head: Buffer, onRefused: (answer: IncomingMessage) => void): void {
  out.on('upgrade', (answer: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
    socket.write(rawHead(answer.statusCode ?? 101, answer.statusMessage, answer.rawHeaders));
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    upSocket.on('error', () => socket.destroy());
    socket.on('error', () => upSocket.destroy());
    upSocket.pipe(socket).pipe(upSocket);
  });
  out.on('response', onRefused);
  socket.on('error', () => out.destroy());
}
