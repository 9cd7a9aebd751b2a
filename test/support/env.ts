import { readFileSync } from 'node:fs';
import { PlaygroundEnvSchema, type PlaygroundEnv } from '../../src/playground/index.ts';

/** The playground that scripts/test.ts booted. Integration tests fail, never skip, without it. */
export function testEnv(): PlaygroundEnv {
  const file = process.env['MESHID_TEST_ENV'];
  if (!file) throw new Error('MESHID_TEST_ENV is not set: run integration tests through `npm test` (scripts/test.ts)');
  return PlaygroundEnvSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** The playground with a real node (meshid and the demo as pods) that scripts/test.ts booted for test/node/. */
export function testNodeEnv(): PlaygroundEnv & { node: NonNullable<PlaygroundEnv['node']> } {
  const file = process.env['MESHID_TEST_NODE_ENV'];
  if (!file) throw new Error('MESHID_TEST_NODE_ENV is not set: run node tests (test/node/) through `npm test` (scripts/test.ts)');
  const env = PlaygroundEnvSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  if (!env.node) throw new Error(`${file} describes a playground without a node`);
  return { ...env, node: env.node };
}
