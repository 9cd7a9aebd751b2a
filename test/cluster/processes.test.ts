import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { isAlive } from '../../src/cluster/index.ts';

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
