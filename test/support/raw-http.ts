// HTTP/1.1 written byte for byte on a bare TCP connection: for what well-behaved clients never
// send (repeated or odd-cased headers, obs-fold, oversized heads) and for clients that send
// slowly on purpose.
import { connect } from 'node:net';

export interface RawAnswer {
  /** Undefined when the server closed without answering. */
  status?: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from connecting until the server ended the connection; undefined if it did not within the timeout. */
  closedAfterMs?: number;
}

function parse(text: string): Pick<RawAnswer, 'status' | 'headers' | 'body'> {
  const split = text.indexOf('\r\n\r\n');
  const head = split >= 0 ? text.slice(0, split) : text;
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { ...(status ? { status: Number(status) } : {}), headers, body: split >= 0 ? text.slice(split + 4) : '' };
}

/**
 * Connects to 127.0.0.1:`port` and writes `parts` one after another, `gapMs` apart, until all
 * are sent or the server answers or closes. Resolves when the server closes the connection or
 * `timeoutMs` passes (then the client closes it), with the answer and when it ended.
 */
export function rawExchange(port: number, parts: (string | Buffer)[], options: { gapMs?: number; timeoutMs?: number } = {}): Promise<RawAnswer> {
  const { gapMs = 0, timeoutMs = 10_000 } = options;
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let closedAfterMs: number | undefined;
    let next = 0;
    let timer: NodeJS.Timeout | undefined;
    const send = (): void => {
      if (socket.destroyed || chunks.length > 0 || next >= parts.length) return;
      socket.write(parts[next++] ?? '');
      if (next < parts.length) timer = setTimeout(send, gapMs);
    };
    const deadline = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('connect', send);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      closedAfterMs ??= Date.now() - started;
      socket.destroy();
    });
    socket.on('error', () => {
      closedAfterMs ??= Date.now() - started;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(deadline);
      resolve({ ...parse(Buffer.concat(chunks).toString('latin1')), ...(closedAfterMs !== undefined ? { closedAfterMs } : {}) });
    });
  });
}
