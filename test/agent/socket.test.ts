import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ManualClock, isMeshidError } from '../../src/core/index.ts';
import { SdsServer, StaticTrustBundle } from '../../src/agent/index.ts';
import { MemoryReviewer, TestCa, bearer, memoryLog, openStream, request, startHarness } from './support.ts';

async function agentAt(socketPath: string, extra: { directoryMode?: number; socketMode?: number } = {}): Promise<SdsServer> {
  const reviewer = new MemoryReviewer();
  const ca = await TestCa.create(reviewer, new ManualClock());
  return new SdsServer({ socketPath, reviewer, signer: ca, trustBundle: new StaticTrustBundle([ca.root.certPem]), log: memoryLog().log, ...extra });
}

describe('the Unix socket', () => {
  it('creates the directory 0750 and the socket 0660, and removes the socket at stop', async () => {
    const h = await startHarness();
    try {
      const dir = await stat(join(h.dir, 'sds'));
      const socket = await stat(h.socketPath);
      assert.ok(socket.isSocket());
      assert.equal(dir.mode & 0o777, 0o750);
      assert.equal(socket.mode & 0o777, 0o660);
      assert.equal(h.server.socketPath, h.socketPath);
      await h.server.stop();
      await assert.rejects(stat(h.socketPath), { code: 'ENOENT' });
    } finally {
      await h.close();
    }
  });

  it('takes other modes when told, and accepts a unix:// address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-agent-'));
    const path = join(dir, 'private', 'agent.sock');
    const server = await agentAt(`unix://${path}`, { directoryMode: 0o700, socketMode: 0o600 });
    try {
      await server.start();
      assert.equal((await stat(join(dir, 'private'))).mode & 0o777, 0o700);
      assert.equal((await stat(path)).mode & 0o777, 0o600);
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removes a stale socket that nothing listens on, and serves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-agent-'));
    const path = join(dir, 'agent.sock');
    // A socket file left by a process that died without cleaning up.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    assert.ok((await stat(path)).isSocket(), 'a stale socket is there');
    const h = await startHarness({ socketDir: dir });
    try {
      assert.ok(h.lines.some((l) => l.includes('removed a stale SDS socket')));
      const token = h.reviewer.add('token-sock', 'sock', 'sock');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['ROOTCA']));
      assert.equal((await stream.next()).resources.length, 1);
      stream.close();
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start where another agent is listening, and leaves its socket alone', async () => {
    const h = await startHarness();
    const second = await agentAt(h.socketPath);
    try {
      await assert.rejects(second.start(), (error: unknown) => isMeshidError(error, 'ERR_INVALID_ARGUMENT') && /another process is serving/.test(error.message));
      assert.ok((await stat(h.socketPath)).isSocket());
      const token = h.reviewer.add('token-first', 'sock', 'first');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['ROOTCA']));
      assert.equal((await stream.next()).resources.length, 1, 'the first agent still serves');
      stream.close();
    } finally {
      await second.stop();
      assert.ok((await stat(h.socketPath)).isSocket(), "the refused agent's stop does not remove the other's socket");
      await h.close();
    }
  });

  it('refuses to remove a file that is not a socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-agent-'));
    const path = join(dir, 'agent.sock');
    await writeFile(path, 'not a socket');
    const server = await agentAt(path);
    try {
      await assert.rejects(server.start(), (error: unknown) => isMeshidError(error, 'ERR_INVALID_ARGUMENT') && /not a socket/.test(error.message));
      assert.ok((await stat(path)).isFile());
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leaves the mode of an existing directory as it is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshid-agent-'));
    await mkdir(join(dir, 'sds'), { mode: 0o755 });
    const server = await agentAt(join(dir, 'sds', 'agent.sock'));
    try {
      await server.start();
      assert.equal((await stat(join(dir, 'sds'))).mode & 0o777, 0o755 & ~process.umask());
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the failing field of a bad option', async () => {
    const reviewer = new MemoryReviewer();
    const ca = await TestCa.create(reviewer, new ManualClock());
    const base = { reviewer, signer: ca, trustBundle: new StaticTrustBundle(), log: memoryLog().log };
    assert.throws(() => new SdsServer({ ...base, socketPath: 'relative.sock' }), /socketPath/);
    assert.throws(() => new SdsServer({ ...base, socketPath: `/tmp/${'x'.repeat(120)}` }), /socketPath/);
    assert.throws(() => new SdsServer({ ...base, socketPath: '/tmp/a.sock', socketMode: 0o1777 }), /socketMode/);
    assert.throws(() => new SdsServer({ ...base, socketPath: '/tmp/a.sock', trustDomain: 'Bad/Domain' }), /trustDomain/);
    assert.throws(() => new SdsServer({ ...base, socketPath: '/tmp/a.sock', certificateTtlSeconds: 0 }), /certificateTtlSeconds/);
  });

  it('ends open streams with UNAVAILABLE at stop', async () => {
    const h = await startHarness();
    try {
      const token = h.reviewer.add('token-stop', 'sock', 'stop');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      await stream.next();
      await h.server.stop();
      const ended = await stream.status();
      assert.equal(ended.code, status.UNAVAILABLE);
      assert.match(ended.details ?? '', /stopping/);
    } finally {
      await h.close();
    }
  });
});
