import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { MeshidError, type Logger } from '../core/index.ts';
import { endSocketWithProblem } from './problem.ts';

export interface ListenerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
}

/**
 * How often Node looks for connections past their headers or request timeout. It only looks
 * this often, so a slow client is dropped up to this long after its deadline: a quarter of
 * the shorter timeout keeps the overrun small, and never more than every 100 ms.
 */
export function connectionsCheckingInterval(limits: Pick<ListenerLimits, 'headersTimeoutMs' | 'requestTimeoutMs'>): number {
  return Math.max(100, Math.min(5_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
}

/**
 * Slowloris defences on one listener: headers within `headersTimeoutMs`, the whole request
 * (body included) within `requestTimeoutMs`, an idle keep-alive connection closed after
 * `keepAliveTimeoutMs`, and any connection silent for `idleTimeoutMs` closed. A connection
 * that breaks one of these, or sends headers over Node's limit, is answered with a problem
 * (408, 431 or 400) and closed. Answers that stream for long (watches) and upgraded
 * connections are exempt from the idle timeout; the proxy sees to that.
 */
export function limitListener(server: HttpServer | HttpsServer, limits: ListenerLimits, log: Logger): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.setTimeout(limits.idleTimeoutMs);
  // Replaces fastify's handler (which answers plain JSON on one listener only) with problems on both.
  server.removeAllListeners('clientError');
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => answerClientError(error, socket, log));
}

function answerClientError(error: NodeJS.ErrnoException, socket: Duplex, log: Logger): void {
  // A response already under way (a proxied answer) cannot be followed by another one.
  const started = (socket as { _httpMessage?: ServerResponse })._httpMessage?.headersSent === true;
  if (error.code === 'ECONNRESET' || socket.destroyed || !socket.writable || started) {
    socket.destroy();
    return;
  }
  const problem =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new MeshidError('ERR_REQUEST_TIMEOUT', 'the request was not received in time; the connection is closed')
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new MeshidError('ERR_HEADERS_TOO_LARGE', 'the request headers are larger than this server accepts')
        : new MeshidError('ERR_INVALID_ARGUMENT', 'the request is not valid HTTP/1.1');
  endSocketWithProblem(socket, problem, log);
}
