import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, access } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isAlive, pidRecord, recordedPeers, type RecordedPeer } from '../../src/cluster/index.ts';
import { PlaygroundEnvSchema } from '../../src/playground/index.ts';
import { MESHID_BIN, runCli } from '../support/cli.ts';
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

  it('down finds every process of an up that was killed before it wrote env.json', async () => {
    const killedDir = await mkdtemp(join(tmpdir(), 'meshid-up-killed-'));
    try {
      const up = spawn(process.execPath, [MESHID_BIN, 'up', '--no-node', '--dir', killedDir, '--detach'], { stdio: 'ignore' });
      // Wait until etcd and kube-apiserver are recorded (bounded), then kill `up` as Ctrl-\ or OOM would.
      let recorded: RecordedPeer[] = [];
      for (let i = 0; i < 600 && recorded.length < 2; i++) {
        await sleep(100);
        recorded = recordedPeers(pidRecord(killedDir));
      }
      up.kill('SIGKILL');
      await new Promise((resolve) => up.once('exit', resolve));
      assert.ok(recorded.length >= 2, `the pid record names etcd and kube-apiserver (${recorded.map((p) => p.name).join(', ')})`);
      await assert.rejects(access(join(killedDir, 'env.json')), 'up never got to env.json');
      const survivors = recordedPeers(pidRecord(killedDir));
      assert.ok(survivors.length >= 2 && survivors.every((p) => isAlive(p.pid)), 'the detached peers outlived up');

      const down = await runCli(['down', '--dir', killedDir], { timeoutMs: 60_000 });
      assert.equal(down.code, 0, down.stderr);
      assert.ok(survivors.every((p) => !isAlive(p.pid)), 'down stopped every recorded process');
      const again = await runCli(['down', '--dir', killedDir]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /\[ERR_PLAYGROUND_NOT_FOUND\]/);
    } finally {
      for (const p of recordedPeers(pidRecord(killedDir))) process.kill(p.pid, 'SIGKILL');
      await rm(killedDir, { recursive: true, force: true });
    }
  });
});
