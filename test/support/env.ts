import { readFileSync } from 'node:fs';
import { PlaygroundEnvSchema, type PlaygroundEnv } from '../../src/playground/index.ts';

/** The playground that scripts/test.ts booted. Integration tests fail, never skip, without it. */
export function testEnv(): PlaygroundEnv {
  const file = process.env['MESHID_TEST_ENV'];
  if (!file) throw new Error('MESHID_TEST_ENV is not set: run integration tests through `npm test` (scripts/test.ts)');
  return PlaygroundEnvSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}
