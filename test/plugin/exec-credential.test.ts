import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ManualClock, isMeshidError } from '../../src/core/index.ts';
import { execCredential } from '../../src/plugin/index.ts';

describe('exec credential plugin', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'meshid-exec-'));
  const tokenFile = join(dir, 'carol.token');
  await writeFile(tokenFile, 'the-token\n');

  it('answers an ExecCredential v1 with the token and an expiry from the clock', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const info = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } });
    const out = JSON.parse(await execCredential(tokenFile, { KUBERNETES_EXEC_INFO: info }, clock)) as {
      apiVersion: string;
      kind: string;
      status: { token: string; expirationTimestamp: string };
    };
    assert.equal(out.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(out.kind, 'ExecCredential');
    assert.equal(out.status.token, 'the-token');
    assert.equal(out.status.expirationTimestamp, '2030-01-01T00:15:00.000Z');
  });

  it('refuses an ExecCredential version it does not speak', async () => {
    const info = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1alpha1' });
    await assert.rejects(execCredential(tokenFile, { KUBERNETES_EXEC_INFO: info }), (e) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
  });

  it('refuses KUBERNETES_EXEC_INFO that is not JSON', async () => {
    await assert.rejects(execCredential(tokenFile, { KUBERNETES_EXEC_INFO: '{' }), (e) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
  });
});
