// Cluster cold build time (empty Go build cache) and warm boot time (binaries cached).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { terminalProgress } from '../src/core/index.ts';
import { ensurePeerBinaries, startCluster } from '../src/cluster/index.ts';
import type { Benchmark, Row } from './lib/types.ts';

const BOOTS = 3;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function buildTimes(): Promise<Row[]> {
  const tmp = await mkdtemp(join(tmpdir(), 'meshid-bench-build-'));
  try {
    // Modules stay in the shared module cache: downloading is the network, not the build.
    const env = { ...process.env, GOCACHE: join(tmp, 'gocache') };
    const timed = async (cacheDir: string): Promise<number> => {
      const t0 = performance.now();
      await ensurePeerBinaries({ cacheDir, env, progress: terminalProgress() });
      return (performance.now() - t0) / 1000;
    };
    const cold = await timed(join(tmp, 'cold'));
    const relink = await timed(join(tmp, 'relink'));
    return [
      {
        benchmark: 'cluster',
        measurement: 'cold build: kube-apiserver, kube-controller-manager, kubectl, etcd (empty Go build cache)',
        value: cold,
        unit: 's',
        baseline: { label: 'same build, Go cache hot', value: relink },
      },
    ];
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function bootTimes(): Promise<Row[]> {
  const binaries = await ensurePeerBinaries({ progress: terminalProgress() });
  const ready: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < BOOTS; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-boot-'));
    try {
      const cluster = await startCluster({ dir, binaries });
      ready.push(cluster.timings.apiserverReady / 1000);
      total.push(cluster.timings.total / 1000);
      await cluster.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const readyMedian = median(ready);
  return [
    {
      benchmark: 'cluster',
      measurement: `warm boot to /readyz (median of ${BOOTS})`,
      value: readyMedian,
      unit: 's',
      baseline: { label: 'whole playground ready (RBAC, kubeconfigs, controllers)', value: median(total) },
      goal: { text: '< 10 s', met: readyMedian < 10 },
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'cluster',
  async run({ quick }) {
    return [...(quick ? [] : await buildTimes()), ...(await bootTimes())];
  },
};
