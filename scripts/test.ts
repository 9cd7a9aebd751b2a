// `npm test`: every unit and integration test. Integration tests (*.int.test.ts) share one
// real playground, booted here and torn down at the end; they find it via MESHID_TEST_ENV.
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { terminalProgress } from '../src/core/index.ts';
import { startPlayground, envFile, type Playground } from '../src/playground/index.ts';
import { ensureCoreDns, ensureKumaPeer, ensureNodeBinaries, ensurePilotAgent } from '../src/cluster/index.ts';
import { buildImage } from '../src/image/index.ts';

const root = resolve(import.meta.dirname, '..');

function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return findTests(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const requested = process.argv.slice(2).map((f) => resolve(f));
const files = (requested.length > 0 ? requested : findTests(join(root, 'test'))).sort();
const needsCluster = files.some((f) => f.endsWith('.int.test.ts'));
/** Tests that start and stop pods and whole nodes: test/node/ and the node's own up/down test. */
const NODE_TESTS = join('test', 'node');
const nodeFiles = files.filter((f) => f.includes(`${NODE_TESTS}/`) || f.endsWith('node.int.test.ts'));

let playground: Playground | undefined;
let dir: string | undefined;
const cleanUp = async (): Promise<void> => {
  await playground?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void cleanUp().finally(() => process.exit(130)));
}

let passed = 0;
let failed = 0;
try {
  // Interop tests' peers build once (minutes, cold) before the clock of any test starts, and
  // only when a test that uses them runs.
  const peers: [string, () => Promise<unknown>][] = [
    ['pilot-agent.int.test.ts', () => ensurePilotAgent({ progress: terminalProgress() })],
    ['kumactl.int.test.ts', () => ensureKumaPeer({ progress: terminalProgress() })],
    ['coredns.int.test.ts', () => ensureCoreDns({ progress: terminalProgress() })],
  ];
  for (const [test, build] of peers) if (files.some((f) => f.endsWith(test))) await build();
  if (needsCluster) {
    // Integration tests share one playground as users get it from `npm start`: a real node,
    // meshid and the demo as pods. They find it via MESHID_TEST_ENV.
    await ensureNodeBinaries({ progress: terminalProgress() });
    await ensureCoreDns({ progress: terminalProgress() });
    await buildImage({ progress: terminalProgress() });
    dir = await mkdtemp(join(tmpdir(), 'meshid-test-'));
    playground = await startPlayground({ dir, progress: terminalProgress(), node: true });
    process.env['MESHID_TEST_ENV'] = envFile(dir);
  }
  console.log(`Running ${files.length} test files: ${files.map((f) => relative(root, f)).join(', ')}`);
  // The fault tests kill and time real processes, with a 5 s recovery bound: they run last,
  // one at a time, so the rest of the suite does not eat into the CPU that bound assumes.
  const alone = files.filter((f) => f.includes(`${join('test', 'faults')}/`));
  // Node tests start and stop pods and whole nodes: one at a time, after the rest.
  const together = files.filter((f) => !alone.includes(f) && !nodeFiles.includes(f));
  for (const [batch, concurrency] of [[together, Math.max(2, availableParallelism())], [nodeFiles, 1], [alone, 1]] as const) {
    if (batch.length === 0) continue;
    const stream = run({ files: [...batch], concurrency, timeout: 10 * 60_000 });
    stream.on('test:pass', (event) => {
      if (event.details.type !== 'suite') passed += 1;
    });
    stream.on('test:fail', (event) => {
      if (event.details.type !== 'suite') failed += 1;
    });
    await pipeline(stream, new spec(), process.stdout, { end: false });
  }
} catch (error) {
  failed += 1;
  console.error('The test run could not start:', error);
} finally {
  await cleanUp();
}
// The one summary line CI and people read.
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
