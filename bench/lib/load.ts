import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent, type RequestOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

/**
 * Runs `task` from `concurrency` workers until the duration or the request cap is reached,
 * whichever comes first: bounded in time and in count. With `perSecond`, starts are paced
 * to that steady rate (a soak) instead of as fast as the workers go (a throughput test).
 */
export async function runLoad(options: { concurrency: number; durationMs: number; maxRequests: number; perSecond?: number; task: () => Promise<boolean> }): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + options.durationMs;
  const interval = options.perSecond ? 1000 / options.perSecond : 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && started < options.maxRequests) {
      const slot = t0 + started * interval;
      started += 1;
      if (slot > performance.now()) await sleep(slot - performance.now());
      if (performance.now() >= deadline) break;
      const s = performance.now();
      const ok = await options.task().catch(() => false);
      latencies.push(performance.now() - s);
      if (!ok) errors += 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, errors, seconds, perSecond: latencies.length / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
}

export interface Answer {
  status: number;
  body: string;
}

// An idle pooled connection is closed by the client after this, well before a server's
// keep-alive timeout (meshid's is 72 s): when the server closes first, a request sent on that
// connection at the same moment fails with "socket hang up". Node's agent would heed the
// server's Keep-Alive hint only when given a timeout of its own.
const IDLE_SOCKET_MS = 30_000;

export type Client = (method: string, url: URL, headers: Record<string, string>, body?: string) => Promise<Answer>;

/** A keep-alive HTTPS client, the same for every target so only the target differs. */
export function httpsClient(tls: Pick<RequestOptions, 'ca' | 'cert' | 'key'>): Client {
  return client(new Agent({ keepAlive: true, maxSockets: 64, timeout: IDLE_SOCKET_MS, ...tls }), httpsRequest);
}

/** The same keep-alive client over plain HTTP, for a peer that serves only that (kubectl proxy). */
export function httpClient(): Client {
  return client(new HttpAgent({ keepAlive: true, maxSockets: 64, timeout: IDLE_SOCKET_MS }), httpRequest);
}

function client(agent: HttpAgent, request: typeof httpRequest): Client {
  return (method, url, headers, body) =>
    new Promise((resolve, reject) => {
      const req = request(url, { method, agent, headers: body ? { ...headers, 'content-type': 'application/json' } : headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
}
