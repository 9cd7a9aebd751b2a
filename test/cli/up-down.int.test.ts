import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isAlive } from '../../src/cluster/index.ts';
import { PlaygroundEnvSchema } from '../../src/playground/index.ts';
import { runCli } from '../support/cli.ts';
import { kubeRequest } from '../support/kube.ts';

describe('meshid up --no-node --detach / meshid down', () => {
  let dir = '';
  after(async () => {
    if (dir) {
      await runCli(['down', '--dir', dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('returns with a ready cluster and a complete env.json, and down leaves no process behind', async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-up-'));
    const up = await runCli(['up', '--no-node', '--dir', dir, '--detach', '-o', 'json'], { timeoutMs: 180_000 });
    assert.equal(up.code, 0, up.stderr);

    const env = PlaygroundEnvSchema.parse(JSON.parse(await readFile(join(dir, 'env.json'), 'utf8')));
    assert.deepEqual(PlaygroundEnvSchema.parse(JSON.parse(up.stdout)), env, '-o json prints env.json');
    assert.match(env.apiServer, /^https:\/\/127\.0\.0\.1:\d+$/);
    for (const file of Object.values(env.kubeconfigs)) await access(file);
    assert.equal(env.pids.length, 9, 'etcd, kube-apiserver, kube-controller-manager, meshid server, SDS agent, sleep and httpbin in foo and bar');
    assert.match(env.server.https, /^https:\/\/127.0.0.1:\d+$/);
    assert.ok(env.pids.every(isAlive));

    const ready = await kubeRequest(env.kubeconfigs.admin, 'GET', '/readyz');
    assert.equal(ready.status, 200);

    const again = await runCli(['up', '--no-node', '--dir', dir, '--detach']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\[ERR_PLAYGROUND_RUNNING\]/);

    const down = await runCli(['down', '--dir', dir]);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(env.pids.every((pid) => !isAlive(pid)), 'every playground process has exited');
    await assert.rejects(access(join(dir, 'env.json')));

    const twice = await runCli(['down', '--dir', dir]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /\[ERR_PLAYGROUND_NOT_FOUND\]/);
  });
});
