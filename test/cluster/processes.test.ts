import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { isAlive, spawnPeer, waitForPeer } from '../../src/cluster/index.ts';
import { isMeshidError } from '../../src/core/index.ts';

describe('isAlive', () => {
  it('takes a zombie (exited, never reaped) for gone, so stopping a detached peer does not wait on it', async () => {
    // `sleep 0` exits at once; its parent becomes `sleep 5` by exec and never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & exec sleep 5'], { stdio: 'ignore' });
    try {
      let zombie: number | undefined;
      for (let i = 0; i < 50 && zombie === undefined; i++) {
        await sleep(50);
        const children = await readFile(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').catch(() => '');
        const child = Number(children.trim().split(' ')[0]);
        if (child > 0 && (await readFile(`/proc/${child}/stat`, 'utf8').catch(() => '')).includes(') Z ')) zombie = child;
      }
      assert.ok(zombie, 'a zombie child appeared');
      assert.equal(isAlive(zombie), false);
      assert.equal(isAlive(parent.pid ?? 0), true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('waitForPeer', () => {
  const withPeer = async (script: string, body: (peer: ReturnType<typeof spawnPeer>) => Promise<void>): Promise<void> => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-wait-'));
    const peer = spawnPeer('probe', process.execPath, ['-e', script], { logFile: join(dir, 'probe.log'), detached: false });
    try {
      await body(peer);
    } finally {
      peer.child.kill('SIGKILL');
      await peer.exited;
      await rm(dir, { recursive: true, force: true });
    }
  };

  it('returns once the check holds', async () => {
    await withPeer('setTimeout(() => {}, 5000)', async (peer) => {
      let calls = 0;
      await waitForPeer(async () => ++calls === 3, peer, 'the probe', { logDir: 'logs', intervalMs: 10 });
      assert.equal(calls, 3);
    });
  });

  it('fails at once when the peer exits, naming its log', async () => {
    await withPeer('process.exit(3)', async (peer) => {
      const started = Date.now();
      await assert.rejects(
        waitForPeer(async () => false, peer, 'the probe', { logDir: 'node/logs', timeoutMs: 10_000, intervalMs: 10 }),
        (error: unknown) => isMeshidError(error, 'ERR_CLUSTER_START_FAILED') && /probe exited \(3\)/.test(error.message) && /node\/logs\/probe\.log/.test(error.hint ?? ''),
      );
      assert.ok(Date.now() - started < 5_000, 'did not wait out the timeout');
    });
  });

  it('gives up after its timeout while the peer runs', async () => {
    await withPeer('setTimeout(() => {}, 5000)', async (peer) => {
      await assert.rejects(waitForPeer(async () => false, peer, 'the probe', { logDir: 'logs', timeoutMs: 300, intervalMs: 20 }), (error: unknown) => isMeshidError(error, 'ERR_CLUSTER_NOT_READY'));
    });
  });
});

