// CLI start-up as a user feels it: `meshid --version`, `--help`, `whoami` with a stored session
// and the exec credential plugin, each a fresh process, beside `kubectl auth whoami` with the
// same kubeconfig in the same run. Wall time is the median of RUNS, and so are CPU time and
// peak RSS, both the kernel's (GNU time's %U + %S and %M).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MESHID_BIN } from '../src/cluster/index.ts';
import { sharedPlayground } from './lib/playground.ts';
import type { Benchmark, Row } from './lib/types.ts';

const RUNS = 5;
const GNU_TIME = '/usr/bin/time';

interface Run {
  wallMs: number;
  /** User plus system CPU time: what the command costs, whatever else the machine runs. */
  cpuMs: number;
  peakRssMiB: number;
}

/** Runs a command to its end under GNU time; a failing command fails the benchmark. */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // User and system CPU seconds and the peak RSS in KiB, on the last line of stderr after the command's own.
    const child = spawn(GNU_TIME, ['-f', '%U %S %M', command, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      const lines = stderr.trimEnd().split('\n');
      const [user = NaN, system = NaN, kib = NaN] = (lines.pop() ?? '').split(' ').map(Number);
      if (code !== 0 || ![user, system, kib].every(Number.isFinite)) reject(new Error(`${command} ${args.join(' ')} failed (${String(code)}): ${lines.join('\n')}`));
      else resolve({ wallMs, cpuMs: (user + system) * 1000, peakRssMiB: kib / 1024 });
    });
  });
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

/** The exec plugin as carol's kubeconfig runs it (kubectl runs it before each of her calls). */
async function execPlugin(kubeconfig: string): Promise<{ command: string; args: string[] }> {
  const config = parse(await readFile(kubeconfig, 'utf8')) as { users?: { user?: { exec?: { command?: string; args?: string[] } } }[] };
  const exec = config.users?.[0]?.user?.exec;
  if (!exec?.command) throw new Error(`${kubeconfig} has no exec plugin`);
  return { command: exec.command, args: exec.args ?? [] };
}

export const benchmark: Benchmark = {
  name: 'cli',
  async run() {
    if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} is missing: install GNU time (Debian: apt-get install time)`);
    const pg = await sharedPlayground();
    // A copy, so the session whoami stores stays out of the kubeconfig other benchmarks use.
    const dir = await mkdtemp(join(tmpdir(), 'meshid-bench-cli-'));
    const alice = join(dir, 'alice.kubeconfig');
    await copyFile(pg.env.kubeconfigs.alice, alice);
    const plugin = await execPlugin(pg.env.kubeconfigs.carol);
    const node = process.execPath;
    const commands = {
      version: [node, [MESHID_BIN, '--version']],
      help: [node, [MESHID_BIN, '--help']],
      whoami: [node, [MESHID_BIN, '--kubeconfig', alice, 'whoami']],
      kubectl: [pg.env.kubectl, ['--kubeconfig', alice, 'auth', 'whoami']],
      plugin: [plugin.command, plugin.args],
      // The floor under every Node.js CLI: the runtime starting and exiting with no code of ours.
      node: [node, ['-e', '0']],
    } satisfies Record<string, [string, string[]]>;
    try {
      // The first whoami logs in and stores the session; every measured one then uses it.
      await timed(...commands.whoami);
      const runs: Record<string, Run[]> = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
      // Round-robin, so a burst of load from elsewhere on the machine hits every command alike.
      for (let i = 0; i < RUNS; i++) {
        for (const [name, command] of Object.entries(commands)) runs[name]?.push(await timed(...command));
      }
      const wall = (name: string): number => median((runs[name] ?? []).map((r) => r.wallMs));
      const cpu = (name: string): number => median((runs[name] ?? []).map((r) => r.cpuMs));
      const rss = (name: string): number => median((runs[name] ?? []).map((r) => r.peakRssMiB));
      const kubectl = { label: '`kubectl auth whoami`, same kubeconfig', wall: wall('kubectl'), cpu: cpu('kubectl'), rss: rss('kubectl') };
      // Wall times on a shared machine stretch with its load; say what it was.
      const load = `load ${loadavg()[0]?.toFixed(1) ?? '?'}`;
      const rows: Row[] = [
        { benchmark: 'cli', measurement: `\`meshid --version\`, wall, median of ${RUNS} (${load})`, value: wall('version'), unit: 'ms', goal: { text: '< 150 ms', met: wall('version') < 150 } },
        { benchmark: 'cli', measurement: `\`meshid --help\`, wall, median of ${RUNS}`, value: wall('help'), unit: 'ms' },
        {
          benchmark: 'cli',
          measurement: `\`node -e 0\` (Node.js ${process.version} alone: the floor of any Node.js CLI), wall, median of ${RUNS}`,
          value: wall('node'),
          unit: 'ms',
          baseline: { label: kubectl.label, value: kubectl.wall },
        },
        {
          benchmark: 'cli',
          measurement: `\`meshid whoami\` as alice (stored session), wall, median of ${RUNS} (${load})`,
          value: wall('whoami'),
          unit: 'ms',
          baseline: { label: kubectl.label, value: kubectl.wall },
          goal: { text: '<= 2x kubectl', met: wall('whoami') <= 2 * kubectl.wall },
        },
        {
          benchmark: 'cli',
          measurement: `\`meshid whoami\` as alice, CPU (user + system), median of ${RUNS}`,
          value: cpu('whoami'),
          unit: 'ms',
          baseline: { label: kubectl.label, value: kubectl.cpu },
        },
        {
          benchmark: 'cli',
          measurement: '`meshid whoami` as alice, peak RSS',
          value: rss('whoami'),
          unit: 'MiB',
          baseline: { label: kubectl.label, value: kubectl.rss },
          goal: { text: '< 80 MiB', met: rss('whoami') < 80 },
        },
        { benchmark: 'cli', measurement: `exec credential plugin (carol's \`meshid playground credential\`), wall, median of ${RUNS}`, value: wall('plugin'), unit: 'ms' },
      ];
      return rows;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
