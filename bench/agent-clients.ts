// Child process of bench/agent.bench.ts: many SDS streams, as many Envoys would hold them,
// spread over several HTTP/2 connections. Each stream asks for default and ROOTCA and ACKs
// every response the way Envoy does.
import { randomBytes } from 'node:crypto';
import { Metadata, credentials, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { SECRET_TYPE_URL, sdsClientConstructor, type DiscoveryRequest, type DiscoveryResponse } from '../src/agent/index.ts';
import { serveRequests, wallNow } from './agent-ipc.ts';

interface BenchStream {
  call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  openedAt: number;
  firstAt: number | undefined;
  defaultVersion: string;
  rootVersion: string;
  /** Versions at the moment the rotation was armed, and when each changed after it. */
  armedDefault: string;
  armedRoot: string;
  newRootAt: number | undefined;
  newDefaultAt: number | undefined;
  failed: string | undefined;
}

const NAMES = ['default', 'ROOTCA'];
const streams: BenchStream[] = [];
const clients: Client[] = [];
let wake: (() => void) | undefined;

function poke(): void {
  wake?.();
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 50);
    });
  }
  return true;
}

function open(client: Client, token: string): BenchStream {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  const method = (client as unknown as { StreamSecrets: (md: Metadata) => ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> }).StreamSecrets.bind(client);
  const call = method(md);
  const s: BenchStream = {
    call,
    openedAt: wallNow(),
    firstAt: undefined,
    defaultVersion: '',
    rootVersion: '',
    armedDefault: '',
    armedRoot: '',
    newRootAt: undefined,
    newDefaultAt: undefined,
    failed: undefined,
  };
  call.on('data', (response: DiscoveryResponse) => {
    const now = wallNow();
    s.firstAt ??= now;
    const [defaultVersion = '', rootVersion = ''] = response.version_info.split('.');
    s.defaultVersion = defaultVersion;
    s.rootVersion = rootVersion;
    if (s.armedRoot && rootVersion !== s.armedRoot) s.newRootAt ??= now;
    if (s.armedDefault && defaultVersion !== s.armedDefault) s.newDefaultAt ??= now;
    call.write({ type_url: SECRET_TYPE_URL, resource_names: NAMES, version_info: response.version_info, response_nonce: response.nonce } as DiscoveryRequest);
    poke();
  });
  call.on('error', (error: Error) => {
    s.failed = error.message;
    poke();
  });
  call.write({ type_url: SECRET_TYPE_URL, resource_names: NAMES } as DiscoveryRequest);
  return s;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

serveRequests({
  /** Opens `streams` streams over `channels` connections, `batch` at a time, each batch served before the next. */
  async open(message) {
    const socketPath = String(message['socketPath']);
    const total = Number(message['streams']);
    const identities = Number(message['identities']);
    const channels = Number(message['channels']);
    const batch = Number(message['batch']);
    const Ctor = sdsClientConstructor();
    for (let i = 0; i < channels; i++) {
      // A local subchannel pool gives each client its own connection instead of one shared.
      clients.push(new Ctor(`unix://${socketPath}`, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
    }
    // Connect 100 at a time: a Unix socket refuses (EAGAIN) what overflows its listen backlog,
    // where TCP would retry; thousands of Envoys do not start in the same millisecond.
    for (let from = 0; from < clients.length; from += 100) {
      await Promise.all(
        clients.slice(from, from + 100).map(
          (client) => new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 30_000, (error) => (error ? reject(error) : resolve()))),
        ),
      );
    }
    const started = wallNow();
    for (let from = 0; from < total; from += batch) {
      const opened: BenchStream[] = [];
      for (let i = from; i < Math.min(total, from + batch); i++) {
        const id = i % identities;
        const client = clients[i % channels];
        if (!client) throw new Error('no client');
        // A projected service-account token is about a kilobyte, and the agent holds each
        // stream's (grpc-js's metadata, the stream's own for renewals): the bench's are as long.
        opened.push(open(client, `bench.ns-${id % 50}.sa-${id}.pod-${i}.${randomBytes(720).toString('base64url')}`));
      }
      streams.push(...opened);
      if (!(await until(() => opened.every((s) => s.firstAt !== undefined || s.failed !== undefined), 120_000))) throw new Error('streams were not served within 120 s');
    }
    const latencies = streams.filter((s) => s.firstAt !== undefined).map((s) => (s.firstAt ?? 0) - s.openedAt).sort((a, b) => a - b);
    const failures = streams.filter((s) => s.failed !== undefined);
    return {
      served: latencies.length,
      failed: failures.length,
      firstFailure: failures[0]?.failed ?? null,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      seconds: (wallNow() - started) / 1000,
    };
  },
  async arm() {
    for (const s of streams) {
      s.armedDefault = s.defaultVersion;
      s.armedRoot = s.rootVersion;
      s.newRootAt = undefined;
      s.newDefaultAt = undefined;
    }
    return {};
  },
  /** Waits until every stream has had a new ROOTCA and a new default (bounded), and says when. */
  async awaitRotation(message) {
    const live = streams.filter((s) => s.failed === undefined);
    const complete = await until(() => live.every((s) => s.newRootAt !== undefined && s.newDefaultAt !== undefined), Number(message['timeoutMs']));
    const lastRoot = Math.max(...live.map((s) => s.newRootAt ?? Infinity));
    const lastBoth = Math.max(...live.map((s) => Math.max(s.newRootAt ?? Infinity, s.newDefaultAt ?? Infinity)));
    return {
      complete,
      streams: live.length,
      rootsReceived: live.filter((s) => s.newRootAt !== undefined).length,
      defaultsReceived: live.filter((s) => s.newDefaultAt !== undefined).length,
      lastRoot,
      lastBoth,
    };
  },
  async close() {
    for (const s of streams) s.call.cancel();
    for (const c of clients) c.close();
    return {};
  },
});
