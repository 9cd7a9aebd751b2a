import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { ManualClock, MeshidError, isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import type { AuditTrail, SecurityEvent } from '../../src/kube/index.ts';
import { DisabledIssuer, KeyedIssuer, TOKEN_ID_FORMAT, checkTokenId, issueUserToken, revokeUserTokens, rotateSigningKey } from '../../src/tokens/index.ts';

const START = Date.UTC(2030, 0, 1);

/** The audit trail in memory, and a record of every permission check asked. */
function harness() {
  const events: SecurityEvent[] = [];
  const trail: AuditTrail = { record: (event) => void events.push(event) };
  const asked: string[] = [];
  const allow = async (): Promise<void> => void asked.push('authorize');
  const deny = async (): Promise<void> => {
    asked.push('authorize');
    throw new MeshidError('ERR_FORBIDDEN', 'no');
  };
  return { events, trail, asked, allow, deny };
}

const refusedWith = (code: ErrorCode) => (error: unknown) => isMeshidError(error) && error.code === code;

describe('issuing a user token (POST /tokens/user, the dashboard)', () => {
  const clock = new ManualClock(START);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const issuer = new KeyedIssuer(() => ({ kid: '7', privateKey }), clock);

  it('issues, answers the jti and expiry, and audits the token by its id', async () => {
    const h = harness();
    const issued = await issueUserToken({ issuer, audit: h.trail, authorize: h.allow }, { user: 'alice', via: 'POST /tokens/user' }, { name: 'ci', groups: ['ops'], validFor: '1h' });
    const claims = decodeJwt(issued.token);
    assert.equal(issued.id, claims.jti);
    assert.deepEqual([issued.name, issued.groups, issued.expiresAt], ['ci', ['ops'], new Date(START + 3_600_000).toISOString()]);
    assert.deepEqual(h.events, [{ reason: 'TokenIssued', user: 'alice', message: `issued user token ${issued.id} for ci (groups ops) (POST /tokens/user)` }]);
  });

  it('refuses bad input with its own code before RBAC is asked', async () => {
    const h = harness();
    const deps = { issuer, audit: h.trail, authorize: h.allow };
    await assert.rejects(issueUserToken(deps, { user: 'alice' }, { name: ' ', validFor: '1h' }), refusedWith('ERR_TOKEN_NAME_REQUIRED'));
    await assert.rejects(issueUserToken(deps, { user: 'alice' }, { name: 'ci', validFor: '0s' }), refusedWith('ERR_VALID_FOR_INVALID'));
    await assert.rejects(issueUserToken(deps, { user: 'alice' }, { name: 'ci', groups: 'ops', validFor: '1h' }), refusedWith('ERR_INVALID_ARGUMENT'));
    assert.deepEqual([h.asked, h.events], [[], []]);
  });

  it('says a control plane without an issuer has none before RBAC is asked', async () => {
    const h = harness();
    await assert.rejects(issueUserToken({ issuer: new DisabledIssuer(), audit: h.trail, authorize: h.allow }, { user: 'alice' }, { name: 'ci', validFor: '1h' }), refusedWith('ERR_ISSUER_DISABLED'));
    assert.deepEqual(h.asked, []);
  });

  it('issues and audits nothing when RBAC says no', async () => {
    const h = harness();
    await assert.rejects(issueUserToken({ issuer, audit: h.trail, authorize: h.deny }, { user: 'bob' }, { name: 'ci', validFor: '1h' }), refusedWith('ERR_FORBIDDEN'));
    assert.deepEqual([h.asked, h.events], [['authorize'], []]);
  });
});

describe('revoking user tokens (the CLI, the dashboard)', () => {
  const memory = () => {
    const revoked: string[] = [];
    return { revoked, revocations: { revoke: async (jtis: string[]) => void revoked.push(...jtis) } };
  };

  it('takes one id format: what the CLI took (UUIDs, letters, digits, -) and what the dashboard took (printable ASCII)', () => {
    for (const id of ['0b9c6f3e-5f7a-4c1e-9d2b-1a2b3c4d5e6f', 'abc-123', 'x'.repeat(256), 'kuma:token/1', '~!']) assert.equal(checkTokenId(id), id);
    for (const id of ['', 'x'.repeat(257), 'a b', 'tab\there', 'ü', 'line\n']) {
      assert.throws(() => checkTokenId(id), (error: unknown) => isMeshidError(error) && error.code === 'ERR_INVALID_ARGUMENT' && error.message.includes(TOKEN_ID_FORMAT), id);
    }
  });

  it('revokes every id in one write and audits them as one event', async () => {
    const h = harness();
    const m = memory();
    await revokeUserTokens({ revocations: m.revocations, audit: h.trail, authorize: h.allow }, { user: 'alice', via: 'meshid CLI' }, ['a1', 'b2']);
    assert.deepEqual(m.revoked, ['a1', 'b2']);
    assert.deepEqual(h.events, [{ reason: 'TokenRevoked', user: 'alice', message: 'revoked user tokens a1, b2 (meshid CLI)' }]);
  });

  it('refuses a malformed id, or none, before RBAC is asked or anything is written', async () => {
    const h = harness();
    const m = memory();
    const deps = { revocations: m.revocations, audit: h.trail, authorize: h.allow };
    await assert.rejects(revokeUserTokens(deps, { user: 'alice' }, ['good', 'not good']), refusedWith('ERR_INVALID_ARGUMENT'));
    await assert.rejects(revokeUserTokens(deps, { user: 'alice' }, []), refusedWith('ERR_INVALID_ARGUMENT'));
    assert.deepEqual([h.asked, m.revoked, h.events], [[], [], []]);
  });

  it('writes and audits nothing when RBAC says no', async () => {
    const h = harness();
    const m = memory();
    await assert.rejects(revokeUserTokens({ revocations: m.revocations, audit: h.trail, authorize: h.deny }, { user: 'bob' }, ['a1']), refusedWith('ERR_FORBIDDEN'));
    assert.deepEqual([m.revoked, h.events], [[], []]);
  });
});

describe('rotating the signing key (the CLI, the dashboard)', () => {
  it('answers the new serial and audits it', async () => {
    const h = harness();
    let serial = 3;
    const keys = { rotate: async () => ++serial };
    assert.equal(await rotateSigningKey({ keys, audit: h.trail, authorize: h.allow }, { user: 'alice' }), 4);
    assert.deepEqual(h.events, [{ reason: 'SigningKeyRotated', user: 'alice', message: 'new user-token signing key 4; older keys still validate until removed' }]);
  });

  it('rotates nothing when RBAC says no', async () => {
    const h = harness();
    let rotated = false;
    const keys = { rotate: async () => ((rotated = true), 1) };
    await assert.rejects(rotateSigningKey({ keys, audit: h.trail, authorize: h.deny }, { user: 'bob' }), refusedWith('ERR_FORBIDDEN'));
    assert.deepEqual([rotated, h.events], [false, []]);
  });
});
