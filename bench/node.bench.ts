// Warm `meshid up` with a node: binaries and the image cached, to the node, meshid's pods and
// the demo's pods Ready; and where the time goes. Built only by `npm run bench` (node peers).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentProgress, terminalProgress } from '../src/core/index.ts';
import { startNodePlayground, type BootTimings } from '../src/playground/index.ts';
import type { Benchmark, Row } from './lib/types.ts';

const BOOTS = 2;
const GOAL_S = 30;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function boot(progress = silentProgress): Promise<BootTimings> {
  const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-node-'));
  try {
    const playground = await startNodePlayground(dir, progress, false, false);
    await playground.stop();
    return playground.timings;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'node',
  async run({ quick }) {
    // The first boot builds whatever is missing (peers, CoreDNS, the image): not measured.
    await boot(terminalProgress());
    const runs: BootTimings[] = [];
    for (let i = 0; i < (quick ? 1 : BOOTS); i++) runs.push(await boot());
    const m = (pick: (t: BootTimings) => number): number => median(runs.map(pick)) / 1000;
    const total = m((t) => t.demoReady);
    const phase = (measurement: string, value: number): Row => ({ benchmark: 'node', measurement, value, unit: 's' });
    return [
      {
        benchmark: 'node',
        measurement: `warm meshid up with a node, to the demo pods Ready (median of ${runs.length})`,
        value: total,
        unit: 's',
        baseline: { label: 'kube-apiserver ready (of which)', value: m((t) => t.apiserverReady) },
        goal: { text: `<= ${GOAL_S} s`, met: total <= GOAL_S },
      },
      phase('  of which: image and peers checked (cached)', m((t) => t.built)),
      phase('  of which: node Ready after the apiserver (containerd started beside it)', m((t) => t.nodeReady - t.apiserverReady)),
      phase("  of which: meshid's image imported after the node (its import began with containerd)", m((t) => Math.max(0, t.imageReady - t.nodeReady))),
      phase('  of which: meshid pods Ready after that (DNS, install, two replicas and the agent)', m((t) => t.meshidReady - Math.max(t.imageReady, t.nodeReady))),
      phase('  of which: demo pods Ready after meshid', m((t) => t.demoReady - t.meshidReady)),
    ];
  },
};
