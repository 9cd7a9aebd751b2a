// The SDS agent at node scale, in Envoy's shape: 5,000 pods, each its own connection holding
// two streams (default and ROOTCA), across 1,000 identities, over the Unix socket. The agent and the clients run in child processes of their own (the agent's
// RSS is then its own, and each side has a core). Measures the agent's RSS with every
// stream served, first-certificate latency, and how long a trust-bundle rotation plus a
// forced renewal of every identity takes to reach every stream.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forkChild, type Child } from './agent-ipc.ts';
import { forkAgent } from './agent-server.ts';
import type { Benchmark, Row } from './lib/types.ts';

const MB = 1024 * 1024;
// Streams per client connection. Envoy holds two per pod, each pod its own connection, and
// each connection costs the agent far more than a stream (an HTTP/2 session: about 23 KB of
// nghttp2 buffers alone). MESHID_BENCH_AGENT_STREAMS_PER_CONNECTION=500 packs the streams on
// few connections instead, to see the cost of streams alone.
const PER_CONNECTION = Number(process.env['MESHID_BENCH_AGENT_STREAMS_PER_CONNECTION'] ?? 2);

interface Memory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  rssAnon: number;
  rssFile: number;
}
interface Opened {
  served: number;
  failed: number;
  firstFailure: string | null;
  p50: number;
  p99: number;
  seconds: number;
}
interface Rotated {
  t0: number;
  cpuSeconds: number;
  rootsQueued: number;
  renewed: number;
}
interface Received {
  complete: boolean;
  streams: number;
  rootsReceived: number;
  defaultsReceived: number;
  lastRoot: number;
  lastBoth: number;
}

export const benchmark: Benchmark = {
  name: 'agent',
  async run({ quick }) {
    const streams = quick ? 1_000 : 10_000;
    const identities = quick ? 100 : 1_000;
    const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-agent-'));
    const socketPath = join(dir, 'sds', 'agent.sock');
    const bench = await forkAgent(dir);
    const agent: Child = bench.child;
    const clients: Child = forkChild(join(import.meta.dirname, 'agent-clients.ts'));
    try {
      const idle = (await agent.request<{ memory: Memory }>('start', { socketPath, roots: [bench.roots[0]] })).memory;
      process.stderr.write(`agent started (RSS ${(idle.rss / MB).toFixed(0)} MB); opening ${streams} streams for ${identities} identities\n`);
      const opened = await clients.request<Opened>(
        'open',
        { socketPath, streams, identities, channels: Math.ceil(streams / PER_CONNECTION), batch: 1_000 },
        300_000,
      );
      if (opened.failed > 0) throw new Error(`${opened.failed} streams failed: ${opened.firstFailure ?? ''}`);
      const loaded = await agent.request<{ memory: Memory; stats: { streams: number; identities: number; csrs: number } }>('measure');
      const mb = (n: number): string => `${(n / MB).toFixed(0)} MB`;
      process.stderr.write(
        `${opened.served} streams served in ${opened.seconds.toFixed(1)} s; agent RSS ${mb(loaded.memory.rss)}, heap ${mb(loaded.memory.heapUsed)} used of ${mb(loaded.memory.heapTotal)}, external ${mb(loaded.memory.external)}; ${JSON.stringify(loaded.stats)}\n`,
      );

      const settled = await agent.request<{ memory: Memory; seconds: number }>('settle', { maxMs: 45_000 }, 90_000);
      process.stderr.write(
        `settled after ${settled.seconds.toFixed(0)} s: agent RSS ${mb(settled.memory.rss)} (${mb(settled.memory.rssAnon)} anonymous, ${mb(settled.memory.rssFile)} mapped files), heap ${mb(settled.memory.heapUsed)} used of ${mb(settled.memory.heapTotal)}, external ${mb(settled.memory.external)}\n`,
      );

      await clients.request('arm');
      const received = clients.request<Received>('awaitRotation', { timeoutMs: 60_000 }, 90_000);
      const rotated = await agent.request<Rotated>('rotate', { roots: bench.roots }, 90_000);
      const got = await received;
      if (!got.complete) throw new Error(`rotation incomplete: ${got.rootsReceived}/${got.streams} ROOTCA, ${got.defaultsReceived}/${got.streams} default`);
      process.stderr.write(
        `rotation: agent queued ${streams} ROOTCA writes in ${(rotated.rootsQueued - rotated.t0).toFixed(0)} ms, finished renewals at ${((rotated.renewed - rotated.t0) / 1000).toFixed(2)} s using ${rotated.cpuSeconds.toFixed(2)} CPU-s; ${bench.signed()} CSRs signed in all\n`,
      );
      const rootSeconds = (got.lastRoot - rotated.t0) / 1000;
      const allSeconds = (got.lastBoth - rotated.t0) / 1000;
      const connections = Math.ceil(streams / PER_CONNECTION);
      const scale = `${connections} connections × ${Math.min(PER_CONNECTION, streams)} streams, ${identities} identities`;
      const rows: Row[] = [
        {
          benchmark: 'agent',
          measurement: `agent RSS, ${scale} served, settled (${settled.seconds.toFixed(0)} s)`,
          value: settled.memory.rss / MB,
          unit: 'MB',
          baseline: { label: 'idle agent', value: idle.rss / MB },
          ...(quick || PER_CONNECTION !== 2 ? {} : { goal: { text: '< 300 MB', met: settled.memory.rss < 300 * MB } }),
        },
        { benchmark: 'agent', measurement: `agent RSS, ${scale}, right after the last was served`, value: loaded.memory.rss / MB, unit: 'MB' },
        // What the agent itself holds, without the node binary's pages that every node process shares.
        { benchmark: 'agent', measurement: `agent anonymous RSS (RssAnon), ${scale}, settled`, value: settled.memory.rssAnon / MB, unit: 'MB', baseline: { label: 'idle agent', value: idle.rssAnon / MB } },
        { benchmark: 'agent', measurement: `first certificate p50 (${scale}, opened 1000 at a time)`, value: opened.p50, unit: 'ms' },
        { benchmark: 'agent', measurement: `first certificate p99 (${scale}, opened 1000 at a time)`, value: opened.p99, unit: 'ms' },
        { benchmark: 'agent', measurement: `new ROOTCA on every stream (${scale})`, value: rootSeconds, unit: 's' },
        {
          benchmark: 'agent',
          measurement: `new ROOTCA + renewal of every identity on every stream (${scale})`,
          value: allSeconds,
          unit: 's',
          baseline: { label: 'agent-side renewals done', value: (rotated.renewed - rotated.t0) / 1000 },
          goal: { text: '< 5 s', met: allSeconds < 5 },
        },
        // Wall time above depends on what else the machine runs; the agent's CPU does not.
        { benchmark: 'agent', measurement: `agent CPU for the rotation and ${identities} renewals (${scale})`, value: rotated.cpuSeconds, unit: 's' },
      ];
      await clients.request('close');
      await agent.request('stop');
      return rows;
    } finally {
      await clients.stop();
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
