import { readFileSync } from 'node:fs';
import { PlaygroundEnvSchema, type PlaygroundEnv } from '../../src/playground/index.ts';

/** The playground that scripts/test.ts booted. Integration tests fail, never skip, without it. */
export function testEnv(): PlaygroundEnv {
  const file = process.env['MESHID_TEST_ENV'];
  if (!file) throw new Error('MESHID_TEST_ENV is not set: run integration tests through `npm test` (scripts/test.ts)');
  return PlaygroundEnvSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** The same playground, for tests of what only a node can prove: fails when it has no node. */
export function testNodeEnv(): PlaygroundEnv & { node: NonNullable<PlaygroundEnv['node']> } {
  const env = testEnv();
  if (!env.node) throw new Error(`${process.env['MESHID_TEST_ENV'] ?? 'env.json'} describes a playground without a node`);
  return { ...env, node: env.node };
}
