import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import { envFile, readEnv } from '../../src/playground/index.ts';

describe('playground env.json', () => {
  it('is undefined when absent', async () => {
    assert.equal(await readEnv(await mkdtemp(join(tmpdir(), 'meshid-env-'))), undefined);
  });

  it('names the failing field when malformed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-env-'));
    await writeFile(envFile(dir), JSON.stringify({ apiServer: 'https://x', kubeconfigs: {}, pids: [] }));
    await assert.rejects(readEnv(dir), (e) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /kubeconfigs\.admin/.test(e.message));
  });

  it('refuses text that is not JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-env-'));
    await writeFile(envFile(dir), '{nope');
    await assert.rejects(readEnv(dir), (e) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
  });
});
