// The audit trail folds only logins (issue #13, item 10): every issuance, revocation, rotation,
// registry change and recovery run leaves its own Event, however close together they come.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ManualClock, createLogger } from '../../src/core/index.ts';
import { LoginFolding, SecurityEvents, type SecurityEvent, type SecurityReason } from '../../src/kube/events.ts';

const NOW = Date.UTC(2030, 0, 1);
const EVERY_OTHER_REASON: SecurityReason[] = ['TokenIssued', 'TokenRevoked', 'SigningKeyRotated', 'CARotationStarted', 'RegistryChanged', 'RecoveryRun'];
const event = (reason: SecurityReason, user = 'mesh-system:admin'): SecurityEvent => ({ reason, user, message: `${reason} by ${user}` });

describe('LoginFolding', () => {
  it('writes a user\'s first login, folds the repeats of the next 60 s, and counts them into the next one written', () => {
    const folding = new LoginFolding();
    assert.equal(folding.admit(event('Login', 'alice'), NOW), 1);
    assert.equal(folding.admit(event('Login', 'alice'), NOW + 1_000), undefined);
    assert.equal(folding.admit(event('Login', 'alice'), NOW + 59_999), undefined);
    assert.equal(folding.admit(event('Login', 'bob'), NOW + 59_999), 1, 'another user is counted apart');
    assert.equal(folding.admit(event('Login', 'alice'), NOW + 60_000), 3, 'the two folded logins and this one');
  });

  it('never folds anything but a login, not even the same act by the same user in the same millisecond', () => {
    const folding = new LoginFolding();
    for (const reason of EVERY_OTHER_REASON) {
      for (let i = 0; i < 3; i++) assert.equal(folding.admit(event(reason), NOW), 1, `${reason} #${i + 1}`);
    }
    assert.equal(folding.admit(event('Login'), NOW), 1, 'a login after them is not folded into them');
  });
});

describe('SecurityEvents', () => {
  it('writes an Event for each of two tokens issued a second apart, and one for two logins', async () => {
    const written: { reason: string; count: number }[] = [];
    const peer = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const parsed = JSON.parse(body) as { reason: string; count: number };
        written.push({ reason: parsed.reason, count: parsed.count });
        res.writeHead(201, { 'content-type': 'application/json' }).end(body);
      });
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    try {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'peer', server: `http://127.0.0.1:${(peer.address() as AddressInfo).port}`, skipTLSVerify: true }],
        users: [{ name: 'meshid' }],
        contexts: [{ name: 'peer', cluster: 'peer', user: 'meshid' }],
        currentContext: 'peer',
      });
      const clock = new ManualClock(NOW);
      const events = new SecurityEvents(kc, 'meshid-system', createLogger('test', 'silent'), clock);
      events.record(event('TokenIssued'));
      clock.advance(1_000);
      events.record(event('TokenIssued'));
      events.record(event('Login', 'alice'));
      events.record(event('Login', 'alice'));
      for (let i = 0; i < 100 && written.length < 3; i++) await sleep(20);
      await sleep(100);
      assert.deepEqual(written, [
        { reason: 'TokenIssued', count: 1 },
        { reason: 'TokenIssued', count: 1 },
        { reason: 'Login', count: 1 },
      ]);
    } finally {
      await new Promise<void>((resolve) => peer.close(() => resolve()));
    }
  });
});
