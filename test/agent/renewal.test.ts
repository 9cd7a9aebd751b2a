import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ManualClock } from '../../src/core/index.ts';
import { DEFAULT_RETRY, ManualScheduler, renewalDelay, retryDelay } from '../../src/agent/index.ts';
import { createAuthority } from '../../src/pki/index.ts';
import { ack, bearer, eventually, fetchSecrets, openStream, pemBlocks, request, rootsOf, startHarness, workloadOf, type Harness } from './support.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function leafOf(response: { resources: { type_url: string; value: Buffer }[] }): X509Certificate {
  return new X509Certificate(pemBlocks(workloadOf(response.resources[0]).chainPem)[0] ?? '');
}

async function withHarness(fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness();
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

describe('renewal timing', () => {
  it('renews at half the lifetime, ±10% of that half', () => {
    const notBefore = 0;
    const notAfter = DAY;
    assert.equal(renewalDelay(notBefore, notAfter, 0, () => 0.5), 12 * HOUR);
    assert.equal(renewalDelay(notBefore, notAfter, 0, () => 0), 0.9 * 12 * HOUR);
    assert.equal(renewalDelay(notBefore, notAfter, 0, () => 0.999999), 12 * HOUR * (0.9 + 0.2 * 0.999999));
    // Measured from now, and never a busy loop for a certificate already past its half.
    assert.equal(renewalDelay(notBefore, notAfter, HOUR, () => 0.5), 11 * HOUR);
    assert.equal(renewalDelay(notBefore, notAfter, 20 * HOUR, () => 0.5), 100);
  });

  it('backs off exponentially from 1 s to 60 s, with jitter, never beyond the bound', () => {
    const mid = (): number => 0.5;
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 20].map((f) => retryDelay(f, DEFAULT_RETRY, mid)), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    assert.equal(retryDelay(1, DEFAULT_RETRY, () => 0), 800);
    assert.equal(retryDelay(1, DEFAULT_RETRY, () => 0.999), 1000 * (0.8 + 0.4 * 0.999));
    assert.equal(retryDelay(10, DEFAULT_RETRY, () => 0.999), 60_000);
  });

  it('ManualScheduler fires due timers in order and not the others', () => {
    const clock = new ManualClock(0);
    const scheduler = new ManualScheduler(clock);
    const fired: string[] = [];
    scheduler.setTimer(() => fired.push(`b@${clock.now()}`), 200);
    scheduler.setTimer(() => fired.push(`a@${clock.now()}`), 100);
    const cancel = scheduler.setTimer(() => fired.push('cancelled'), 150);
    scheduler.setTimer(() => fired.push('late'), 1000);
    cancel();
    scheduler.advance(500);
    assert.deepEqual(fired, ['a@100', 'b@200']);
    assert.equal(clock.now(), 500);
    assert.equal(scheduler.pending, 1);
    assert.equal(scheduler.nextIn(), 500);
  });
});

describe('renewal and pushes', () => {
  it('renews at half the lifetime with a new key and pushes it on the open stream', () =>
    withHarness(async (h) => {
      const token = h.reviewer.add('token-renew', 'renew', 'web');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      const first = await stream.next();
      stream.send(ack(first, ['default']));
      assert.equal(h.ca.calls, 1);
      // random() is 0.5 in the harness: renewal at exactly half of the 24 h the CA granted.
      assert.equal(h.scheduler.nextIn(), 12 * HOUR);
      h.scheduler.advance(12 * HOUR - 1);
      await stream.nothingFor(100);
      assert.equal(h.ca.calls, 1);
      h.scheduler.advance(1);
      const pushed = await stream.next();
      assert.equal(h.ca.calls, 2);
      assert.equal(h.ca.tokensSeen.at(-1), token, "the renewal presents the open stream's token");
      assert.notEqual(pushed.version_info, first.version_info);
      assert.notEqual(pushed.nonce, first.nonce);
      assert.notEqual(workloadOf(pushed.resources[0]).keyPem, workloadOf(first.resources[0]).keyPem, 'a renewal makes a new key');
      assert.notEqual(leafOf(pushed).serialNumber, leafOf(first).serialNumber);
      assert.equal(Date.parse(leafOf(pushed).validFrom), h.clock.now(), 'issued at the renewal time');
      stream.send(ack(pushed, ['default']));
      await stream.nothingFor(100);
      assert.equal(h.scheduler.nextIn(), 12 * HOUR, 'the next renewal is scheduled from the new certificate');
      stream.close();
    }));

  it('measures half the lifetime from the issue, not from a notBefore the CA backdated', async () => {
    // A 20 s certificate from a CA that backdates a minute, as meshid's does: 80 s between
    // notBefore and notAfter, whose half lies 20 s in the past at the moment of issue.
    const h = await startHarness({ server: { certificateTtlSeconds: 20 } });
    try {
      h.ca.backdateMs = 60_000;
      const token = h.reviewer.add('token-backdated', 'renew', 'short');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      const first = await stream.next();
      stream.send(ack(first, ['default']));
      assert.equal(Date.parse(leafOf(first).validFrom), h.clock.now() - 60_000, 'the leaf is backdated');
      assert.equal(h.scheduler.nextIn(), 10_000, 'half of the 20 s the workload really has');
      h.scheduler.advance(10_000);
      const renewed = await stream.next();
      assert.notEqual(renewed.version_info, first.version_info);
      assert.equal(h.ca.calls, 2);
      stream.close();
    } finally {
      await h.close();
    }
  });

  it('drops, rather than renews, a certificate that no stream serves any more', () =>
    withHarness(async (h) => {
      const token = h.reviewer.add('token-gone', 'renew', 'gone');
      const first = await fetchSecrets(h.client(), bearer(token), request(['default']));
      assert.equal(h.server.stats().identities, 1);
      h.scheduler.advance(12 * HOUR);
      await eventually(() => h.server.stats().identities === 0, 2_000, 'the entry to be dropped');
      assert.equal(h.ca.calls, 1, 'no CSR without a stream to serve it');
      assert.equal(h.scheduler.pending, 0);
      const again = await fetchSecrets(h.client(), bearer(token), request(['default']));
      assert.notEqual(again.version_info, first.version_info);
      assert.equal(h.ca.calls, 2);
    }));

  it('keeps serving the cached certificate while the CA is down, backs off, and renews when it is back', () =>
    withHarness(async (h) => {
      const token = h.reviewer.add('token-down', 'renew', 'down');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      const first = await stream.next();
      stream.send(ack(first, ['default']));

      h.ca.down = true;
      h.scheduler.advance(12 * HOUR);
      await eventually(() => h.ca.calls === 2 && h.scheduler.pending === 1, 5_000, 'the failed renewal and its retry timer');
      assert.equal(h.scheduler.nextIn(), 1_000);
      h.scheduler.advance(1_000);
      await eventually(() => h.ca.calls === 3 && h.scheduler.pending === 1, 5_000, 'the second failure');
      assert.equal(h.scheduler.nextIn(), 2_000, 'the wait doubles');
      await stream.nothingFor(100);

      // A new stream of the identity still gets the cached certificate, without a CSR.
      const other = h.reviewer.add('token-down-2', 'renew', 'down');
      const late = openStream(h.client(), bearer(other));
      late.send(request(['default']));
      assert.equal((await late.next()).version_info, first.version_info);
      assert.equal(h.ca.calls, 3);
      assert.ok(h.lines.some((l) => l.includes('could not renew')), 'the failure is logged');

      h.ca.down = false;
      h.scheduler.advance(2_000);
      const renewed = await stream.next();
      assert.notEqual(renewed.version_info, first.version_info);
      const lateRenewed = await late.next();
      assert.equal(lateRenewed.version_info, renewed.version_info, 'every stream of the identity gets the renewal');
      assert.equal(h.scheduler.nextIn(), 12 * HOUR, 'back to the normal schedule, failures forgotten');
      stream.close();
      late.close();
    }));

  it('ends the streams with UNAVAILABLE when the certificate expires before the CA comes back', () =>
    withHarness(async (h) => {
      const token = h.reviewer.add('token-expire', 'renew', 'expire');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      await stream.next();
      h.ca.down = true;
      h.scheduler.advance(12 * HOUR);
      await eventually(() => h.scheduler.pending === 1, 5_000, 'the retry timer');
      // Retries fill the rest of the lifetime; the last timer lands exactly at notAfter.
      for (let i = 0; i < 1000 && !stream.ended; i++) {
        const next = h.scheduler.nextIn();
        if (next === undefined) break;
        const calls = h.ca.calls;
        h.scheduler.advance(next);
        await eventually(() => stream.ended || h.ca.calls > calls || h.scheduler.pending === 0, 5_000, 'a retry');
        await eventually(() => stream.ended || h.scheduler.pending === 1 || h.server.stats().identities === 0, 5_000, 'the next timer');
      }
      const ended = await stream.status();
      assert.equal(ended.code, status.UNAVAILABLE);
      assert.match(ended.details ?? '', /expired/);
      assert.equal(h.server.stats().identities, 0);
    }));

  it('answers UNAVAILABLE to a first request when the CA is down and nothing is cached', () =>
    withHarness(async (h) => {
      h.ca.down = true;
      const token = h.reviewer.add('token-cold', 'renew', 'cold');
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      const ended = await stream.status();
      assert.equal(ended.code, status.UNAVAILABLE);
      assert.match(ended.details ?? '', /ERR_CA_UNAVAILABLE/);
      assert.equal(h.server.stats().identities, 0, 'a failed first issue leaves nothing behind');
      h.ca.down = false;
      const again = openStream(h.client(), bearer(token));
      again.send(request(['default']));
      assert.equal((await again.next()).resources.length, 1);
      again.close();
    }));

  it('ends the stream whose token the CA refuses at renewal, and renews with another stream of the identity', () =>
    withHarness(async (h) => {
      const older = h.reviewer.add('token-older', 'renew', 'shared');
      const newer = h.reviewer.add('token-newer', 'renew', 'shared');
      const a = openStream(h.client(), bearer(older));
      a.send(request(['default']));
      await a.next();
      const b = openStream(h.client(), bearer(newer));
      b.send(request(['default']));
      const first = await b.next();
      h.ca.refused.add(newer); // e.g. the newer pod's token was revoked
      h.scheduler.advance(12 * HOUR);
      const ended = await b.status();
      assert.equal(ended.code, status.UNAUTHENTICATED);
      const renewed = await a.next();
      assert.notEqual(renewed.version_info, first.version_info);
      assert.deepEqual(h.ca.tokensSeen.slice(-2), [newer, older], 'newest token first, then the next');
      a.close();
    }));

  it('rotateCertificates renews every served identity now and pushes to all its streams', () =>
    withHarness(async (h) => {
      const streams = ['a', 'b', 'c'].map((sa) => {
        const s = openStream(h.client(), bearer(h.reviewer.add(`token-rot-${sa}`, 'rotate', sa)));
        s.send(request(['default']));
        return s;
      });
      const first = await Promise.all(streams.map((s) => s.next()));
      await fetchSecrets(h.client(), bearer(h.reviewer.add('token-rot-idle', 'rotate', 'idle')), request(['default']));
      assert.equal(h.server.stats().identities, 4);
      const calls = h.ca.calls;
      await h.server.rotateCertificates();
      const pushed = await Promise.all(streams.map((s) => s.next()));
      for (const [i, p] of pushed.entries()) assert.notEqual(p.version_info, first[i]?.version_info);
      assert.equal(h.ca.calls - calls, 3, 'served identities only');
      assert.equal(h.server.stats().identities, 3, 'the idle one is dropped');
      for (const s of streams) s.close();
    }));
});

describe('trust bundle changes', () => {
  it('pushes a new ROOTCA to the streams that asked for it, and nothing to the others', () =>
    withHarness(async (h) => {
      const token = h.reviewer.add('token-roots', 'roots', 'web');
      const client = h.client();
      const rootStream = openStream(client, bearer(token));
      const certStream = openStream(client, bearer(token));
      const both = openStream(client, bearer(token));
      rootStream.send(request(['ROOTCA']));
      certStream.send(request(['default']));
      both.send(request(['default', 'ROOTCA']));
      const [r1, c1, b1] = await Promise.all([rootStream.next(), certStream.next(), both.next()]);
      rootStream.send(ack(r1, ['ROOTCA']));
      certStream.send(ack(c1, ['default']));
      both.send(ack(b1, ['default', 'ROOTCA']));

      const next = await createAuthority('meshid test root 2');
      // A rotation first distributes old and new roots together.
      h.bundle.set([h.ca.root.certPem, next.certPem]);
      const r2 = await rootStream.next();
      assert.notEqual(r2.version_info, r1.version_info);
      const roots = pemBlocks(rootsOf(r2.resources[0]).trustedCa);
      assert.deepEqual(roots.map((p) => p.trim()), [h.ca.root.certPem.trim(), next.certPem.trim()]);
      const b2 = await both.next();
      assert.equal(workloadOf(b2.resources[0]).keyPem, workloadOf(b1.resources[0]).keyPem, 'the certificate is unchanged');
      assert.equal(pemBlocks(rootsOf(b2.resources[1]).trustedCa).length, 2);
      await certStream.nothingFor(200);

      // The same bundle again is not a change.
      h.bundle.set([h.ca.root.certPem, next.certPem]);
      await rootStream.nothingFor(200);
      for (const s of [rootStream, certStream, both]) s.close();
    }));
});
