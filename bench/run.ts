// `npm run bench`: every benchmark under bench/, one table at the end.
// Flags: --quick skips the slowest measurements; --only NAME runs one benchmark;
// --soak-duration 90s|5m sets how long the soak runs.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/tokens/index.ts';
import { stopSharedPlayground } from './lib/playground.ts';
import { renderTable } from './lib/table.ts';
import type { Benchmark, Row } from './lib/types.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, 'soak-duration': { type: 'string' } } });
const soakDurationMs = values['soak-duration'] ? parseDuration(values['soak-duration']) : values.quick ? 30_000 : 5 * 60_000;
// Shorter, and the warm-up and the RSS windows leave nothing between them to compare.
if (soakDurationMs < 10_000) throw new Error(`--soak-duration ${values['soak-duration'] ?? ''} is under 10 s`);
const files = readdirSync(import.meta.dirname).filter((f) => f.endsWith('.bench.ts')).sort();
const rows: Row[] = [];
try {
  for (const file of files) {
    const { benchmark } = (await import(join(import.meta.dirname, file))) as { benchmark: Benchmark };
    if (values.only && benchmark.name !== values.only) continue;
    process.stderr.write(`\n== ${benchmark.name} ==\n`);
    rows.push(...(await benchmark.run({ quick: values.quick, soakDurationMs })));
  }
} finally {
  await stopSharedPlayground();
}
console.log(`\n${renderTable(rows)}`);
