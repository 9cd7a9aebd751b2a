import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { CompactEncrypt, SignJWT, generateKeyPair } from 'jose';
import { ManualClock, isMeshidError } from '../../src/core/index.ts';
import {
  DEFAULT_AUDIENCE,
  SESSION_TTL_MS,
  SessionTokens,
  StaticSessionKeys,
  WRAPPED_TTL_MS,
  newSessionKey,
  type Capabilities,
  type Identity,
  type SessionKey,
} from '../../src/authn/index.ts';
import { parseKeys, serializeKeys } from '../../src/authn/session-keys.ts';

const START = Date.UTC(2030, 0, 1);
const SECOND = 1000;

const alice: Identity = { name: 'alice', groups: ['dev', 'system:authenticated'], uid: 'uid-123' };
const caps: Capabilities = { 'pods/list': true, 'usertokens.meshid.io/create': false };

function setup(keys: SessionKey[] = [newSessionKey()]): { key: SessionKey; keys: StaticSessionKeys; clock: ManualClock; tokens: SessionTokens } {
  const clock = new ManualClock(START);
  const source = new StaticSessionKeys(keys);
  const key = keys[0];
  assert.ok(key);
  return { key, keys: source, clock, tokens: new SessionTokens(source, clock) };
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The claims meshid puts in a session token, valid at START. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sub: 'alice',
    groups: ['dev'],
    caps: {},
    iss: 'meshid',
    aud: 'meshid-session',
    iat: Math.floor(START / 1000),
    exp: Math.floor((START + SESSION_TTL_MS) / 1000),
    jti: 'a-jti',
    ...overrides,
  };
}

/** An HS256 JWS built by hand, so header fields jose would refuse to write can be set. */
function handSigned(header: Record<string, unknown>, payload: Record<string, unknown>, secret: Uint8Array): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** The key meshid derives from a session key for wrapped tokens (HKDF, see session-tokens.ts). */
function wrapKeyOf(key: SessionKey): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', key.secret, new Uint8Array(0), 'meshid wrapped token v1', 32));
}

/** Flips one character in the middle of a base64url segment. */
function flip(segment: string): string {
  const i = Math.floor(segment.length / 2);
  return segment.slice(0, i) + (segment[i] === 'A' ? 'B' : 'A') + segment.slice(i + 1);
}

const invalidToken = (e: unknown): boolean => isMeshidError(e, 'ERR_TOKEN_INVALID');
const invalidWrapped = (e: unknown): boolean => isMeshidError(e, 'ERR_WRAPPED_TOKEN_INVALID');

describe('session tokens: issue and verify', () => {
  it('round-trips user, groups, uid and capabilities, expiring 10 h after issue', async () => {
    const { tokens } = setup();
    const issued = await tokens.issue(alice, caps);
    assert.equal(issued.expiresAt, START + 10 * 60 * 60 * SECOND);
    assert.equal(issued.session.expiresAt, issued.expiresAt);

    const session = await tokens.verify(issued.token);
    assert.deepEqual(session.user, alice);
    assert.deepEqual(session.capabilities, caps);
    assert.equal(session.expiresAt, START + SESSION_TTL_MS);
    assert.equal(session.jti, issued.session.jti);
  });

  it('carries extra attributes and leaves out uid and extra when the user has none', async () => {
    const { tokens } = setup();
    const withExtra: Identity = { name: 'carol', groups: [], extra: { 'authentication.kubernetes.io/pod-name': ['p1'] } };
    assert.deepEqual((await tokens.verify((await tokens.issue(withExtra, {})).token)).user, withExtra);

    const plain = (await tokens.verify((await tokens.issue({ name: 'bob', groups: ['ops'], extra: {} }, {})).token)).user;
    assert.deepEqual(plain, { name: 'bob', groups: ['ops'] });
  });

  it('signs HS256 with the current key id in the header', async () => {
    const { tokens, key } = setup();
    const { token } = await tokens.issue(alice, caps);
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as Record<string, unknown>;
    assert.equal(header['alg'], 'HS256');
    assert.equal(header['kid'], key.kid);
  });

  it('gives every session its own jti', async () => {
    const { tokens } = setup();
    const a = await tokens.issue(alice, caps);
    const b = await tokens.issue(alice, caps);
    assert.notEqual(a.session.jti, b.session.jti);
    assert.notEqual(a.token, b.token);
  });

  it('accepts a token one second before it expires', async () => {
    const { tokens, clock } = setup();
    const { token } = await tokens.issue(alice, caps);
    clock.advance(SESSION_TTL_MS - SECOND);
    assert.equal((await tokens.verify(token)).user.name, 'alice');
  });

  it('refuses an expired token with ERR_TOKEN_EXPIRED', async () => {
    const { tokens, clock } = setup();
    const { token } = await tokens.issue(alice, caps);
    clock.advance(SESSION_TTL_MS + SECOND);
    await assert.rejects(tokens.verify(token), (e) => isMeshidError(e, 'ERR_TOKEN_EXPIRED'));
  });

  it('reports a forged expired token as invalid, not expired (signature first)', async () => {
    const { tokens, clock } = setup();
    const [h, p, s] = (await tokens.issue(alice, caps)).token.split('.');
    clock.advance(SESSION_TTL_MS + SECOND);
    await assert.rejects(tokens.verify(`${h}.${p}.${flip(s ?? '')}`), invalidToken);
  });

  it('refuses a token whose payload was changed', async () => {
    const { tokens } = setup();
    const [h, p, s] = (await tokens.issue(alice, caps)).token.split('.');
    const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<string, unknown>;
    const forged = b64({ ...payload, sub: 'admin', groups: ['system:masters'] });
    await assert.rejects(tokens.verify(`${h}.${forged}.${s}`), invalidToken);
  });

  it('refuses a token whose signature was changed or removed', async () => {
    const { tokens } = setup();
    const [h, p, s] = (await tokens.issue(alice, caps)).token.split('.');
    await assert.rejects(tokens.verify(`${h}.${p}.${flip(s ?? '')}`), invalidToken);
    await assert.rejects(tokens.verify(`${h}.${p}.`), invalidToken);
  });

  it('refuses an unsigned alg "none" token that names a real key', async () => {
    const { tokens, key } = setup();
    await assert.rejects(tokens.verify(`${b64({ alg: 'none', kid: key.kid, typ: 'JWT' })}.${b64(claims())}.`), invalidToken);
  });

  it('refuses RS256, even with a valid RSA signature and our key id', async () => {
    const { tokens, key } = setup();
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: key.kid }).sign(privateKey);
    await assert.rejects(tokens.verify(token), invalidToken);
  });

  it('refuses another HMAC algorithm even when signed with the real session key', async () => {
    const { tokens, key } = setup();
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS512', kid: key.kid }).sign(new Uint8Array([...key.secret, ...key.secret]));
    await assert.rejects(tokens.verify(token), invalidToken);
  });

  it('accepts a hand-made HS256 token with the real key (control for the header tests below)', async () => {
    const { tokens, key } = setup();
    const session = await tokens.verify(handSigned({ alg: 'HS256', kid: key.kid }, claims(), key.secret));
    assert.equal(session.user.name, 'alice');
  });

  it('refuses a token with an unknown, missing, empty or non-string kid', async () => {
    const { tokens, key } = setup();
    for (const header of [{ alg: 'HS256', kid: 'no-such-key' }, { alg: 'HS256' }, { alg: 'HS256', kid: '' }, { alg: 'HS256', kid: 42 }, { alg: 'HS256', kid: [key.kid] }]) {
      await assert.rejects(tokens.verify(handSigned(header, claims(), key.secret)), invalidToken, JSON.stringify(header));
    }
  });

  it('refuses a token signed by another session key, under its own kid or under ours', async () => {
    const { tokens, key } = setup();
    const other = setup();
    await assert.rejects(tokens.verify((await other.tokens.issue(alice, caps)).token), invalidToken);
    const impostor = setup([{ kid: key.kid, secret: newSessionKey().secret }]);
    await assert.rejects(tokens.verify((await impostor.tokens.issue(alice, caps)).token), invalidToken);
  });

  it('refuses a token for another issuer or audience', async () => {
    const { tokens, key } = setup();
    await assert.rejects(tokens.verify(handSigned({ alg: 'HS256', kid: key.kid }, claims({ iss: 'someone-else' }), key.secret)), invalidToken);
    await assert.rejects(tokens.verify(handSigned({ alg: 'HS256', kid: key.kid }, claims({ aud: 'kubernetes' }), key.secret)), invalidToken);
  });

  it('refuses a correctly signed token that lacks a required claim or has malformed groups or capabilities', async () => {
    const { tokens, key } = setup();
    const cases: Record<string, unknown>[] = [
      claims({ jti: undefined }),
      claims({ sub: undefined }),
      claims({ exp: undefined }),
      claims({ iat: undefined }),
      claims({ groups: undefined }),
      claims({ groups: 'dev' }),
      claims({ caps: undefined }),
      claims({ caps: null }),
    ];
    for (const payload of cases) {
      await assert.rejects(tokens.verify(handSigned({ alg: 'HS256', kid: key.kid }, payload, key.secret)), invalidToken, JSON.stringify(payload));
    }
  });

  it('refuses a token over 16 KiB before parsing it, even if correctly signed', async () => {
    const { tokens } = setup();
    const many = Array.from({ length: 700 }, (_, i) => `group-number-${i}`);
    const { token } = await tokens.issue({ name: 'alice', groups: many }, {});
    assert.ok(token.length > 16 * 1024);
    await assert.rejects(tokens.verify(token), invalidToken);
    await assert.rejects(tokens.verify('x'.repeat(16 * 1024 + 1)), invalidToken);
  });

  it('refuses strings that are not JWTs', async () => {
    const { tokens } = setup();
    for (const garbage of ['', 'not-a-token', 'a.b.c', '...']) {
      await assert.rejects(tokens.verify(garbage), invalidToken, garbage);
    }
  });

  it('refuses a wrapped token presented as an ID token', async () => {
    const { tokens } = setup();
    const wrapped = await tokens.wrap((await tokens.issue(alice, caps)).token);
    await assert.rejects(tokens.verify(wrapped), invalidToken);
  });
});

describe('session tokens: static key sets', () => {
  it('signs with the first key and still verifies tokens of a later (rotated-out) key', async () => {
    const oldKey = newSessionKey();
    const newKey = newSessionKey();
    const before = setup([oldKey]);
    const oldToken = (await before.tokens.issue(alice, caps)).token;

    const after = setup([newKey, { ...oldKey, retireAt: START + SESSION_TTL_MS }]);
    assert.equal((await after.tokens.verify(oldToken)).user.name, 'alice');
    const newToken = (await after.tokens.issue(alice, caps)).token;
    const header = JSON.parse(Buffer.from(newToken.split('.')[0] ?? '', 'base64url').toString()) as { kid: string };
    assert.equal(header.kid, newKey.kid);
  });

  it('refuses tokens of a key that was dropped from the set', async () => {
    const oldKey = newSessionKey();
    const oldToken = (await setup([oldKey]).tokens.issue(alice, caps)).token;
    await assert.rejects(setup([newSessionKey()]).tokens.verify(oldToken), invalidToken);
  });

  it('reports an empty key set as ERR_SESSION_KEY_UNAVAILABLE when issuing or wrapping', async () => {
    const tokens = new SessionTokens(new StaticSessionKeys([]), new ManualClock(START));
    await assert.rejects(tokens.issue(alice, caps), (e) => isMeshidError(e, 'ERR_SESSION_KEY_UNAVAILABLE'));
    await assert.rejects(tokens.wrap('t'), (e) => isMeshidError(e, 'ERR_SESSION_KEY_UNAVAILABLE'));
  });

  it('round-trips keys, including retireAt, through the Secret format', () => {
    const keys: SessionKey[] = [newSessionKey(), { ...newSessionKey(), retireAt: START + 1234 }];
    const parsed = parseKeys(serializeKeys(keys));
    assert.equal(parsed.length, 2);
    for (const [i, key] of keys.entries()) {
      assert.equal(parsed[i]?.kid, key.kid);
      assert.deepEqual(Buffer.from(parsed[i]?.secret ?? []), Buffer.from(key.secret));
      assert.equal(parsed[i]?.retireAt, key.retireAt);
    }
    assert.equal('retireAt' in (parsed[0] ?? {}), false);
  });

  it('refuses a Secret with no keys, a short key, an empty kid or a bad retireAt', () => {
    const key = Buffer.alloc(32, 7).toString('base64url');
    for (const text of [
      undefined,
      '',
      'not json',
      '[]',
      '{}',
      JSON.stringify([{ kid: 'k', key: 'c2hvcnQ' }]),
      JSON.stringify([{ kid: '', key }]),
      JSON.stringify([{ kid: 'k', key, retireAt: 'tomorrow' }]),
    ]) {
      assert.throws(() => parseKeys(text), Error, String(text));
    }
  });
});

describe('session tokens: wrapped tokens', () => {
  it('unwraps to the ID token once; a second use is ERR_WRAPPED_TOKEN_REPLAYED', async () => {
    const { tokens } = setup();
    const { token } = await tokens.issue(alice, caps);
    const wrapped = await tokens.wrap(token);
    assert.notEqual(wrapped, token);
    assert.equal(wrapped.includes(token), false);
    assert.equal(await tokens.unwrap(wrapped), token);
    await assert.rejects(tokens.unwrap(wrapped), (e) => isMeshidError(e, 'ERR_WRAPPED_TOKEN_REPLAYED'));
  });

  it('uses JWE dir + A256GCM with the current key id', async () => {
    const { tokens, key } = setup();
    const wrapped = await tokens.wrap('t');
    assert.equal(wrapped.split('.').length, 5);
    const header = JSON.parse(Buffer.from(wrapped.split('.')[0] ?? '', 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(header, { alg: 'dir', enc: 'A256GCM', kid: key.kid });
  });

  it('wraps the same token twice into two independent single-use handles', async () => {
    const { tokens } = setup();
    const first = await tokens.wrap('the-token');
    const second = await tokens.wrap('the-token');
    assert.notEqual(first, second);
    assert.equal(await tokens.unwrap(first), 'the-token');
    assert.equal(await tokens.unwrap(second), 'the-token');
  });

  it('still unwraps just before 10 s', async () => {
    const { tokens, clock } = setup();
    const wrapped = await tokens.wrap('t');
    clock.advance(WRAPPED_TTL_MS - 1);
    assert.equal(await tokens.unwrap(wrapped), 't');
  });

  it('refuses a wrapped token at 10 s with ERR_WRAPPED_TOKEN_INVALID', async () => {
    const { tokens, clock } = setup();
    const wrapped = await tokens.wrap('t');
    clock.advance(WRAPPED_TTL_MS);
    await assert.rejects(tokens.unwrap(wrapped), invalidWrapped);
  });

  it('refuses a used wrapped token as expired once its 10 s are over', async () => {
    const { tokens, clock } = setup();
    const wrapped = await tokens.wrap('t');
    await tokens.unwrap(wrapped);
    clock.advance(WRAPPED_TTL_MS + SECOND);
    await assert.rejects(tokens.unwrap(wrapped), invalidWrapped);
  });

  it('refuses garbage', async () => {
    const { tokens } = setup();
    for (const garbage of ['', 'garbage', 'a.b.c.d.e', `${b64({ alg: 'dir', enc: 'A256GCM' })}....`]) {
      await assert.rejects(tokens.unwrap(garbage), invalidWrapped, garbage);
    }
  });

  it('refuses a wrapped token with a changed ciphertext, tag, IV or header', async () => {
    const { tokens, key } = setup();
    const parts = (await tokens.wrap('t')).split('.');
    for (const index of [2, 3, 4]) {
      const tampered = parts.map((p, i) => (i === index ? flip(p) : p)).join('.');
      await assert.rejects(tokens.unwrap(tampered), invalidWrapped, `part ${index}`);
    }
    const header = b64({ alg: 'dir', enc: 'A256GCM', kid: key.kid, cty: 'x' });
    await assert.rejects(tokens.unwrap([header, ...parts.slice(1)].join('.')), invalidWrapped);
    // The untouched original still works: the failures above did not burn it.
    assert.equal(await tokens.unwrap(parts.join('.')), 't');
  });

  it('refuses a wrapped token made with another session key, under its own kid or under ours', async () => {
    const { tokens, key } = setup();
    await assert.rejects(tokens.unwrap(await setup().tokens.wrap('t')), invalidWrapped);
    const impostor = setup([{ kid: key.kid, secret: newSessionKey().secret }]);
    await assert.rejects(tokens.unwrap(await impostor.tokens.wrap('t')), invalidWrapped);
  });

  it('refuses a JWE under our derived key that uses another algorithm or lacks fields', async () => {
    const { tokens, key } = setup();
    const wrapKey = wrapKeyOf(key);
    const exp = START + WRAPPED_TTL_MS;
    const encrypt = (payload: unknown, header: { alg: string; enc: string }): Promise<string> =>
      new CompactEncrypt(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ ...header, kid: key.kid }).encrypt(wrapKey);

    // Control: a hand-made JWE with meshid's own parameters is accepted.
    assert.equal(await tokens.unwrap(await encrypt({ t: 'ok', jti: 'j-control', exp, aud: DEFAULT_AUDIENCE }, { alg: 'dir', enc: 'A256GCM' })), 'ok');

    await assert.rejects(tokens.unwrap(await encrypt({ t: 't', jti: 'j1', exp }, { alg: 'A256KW', enc: 'A256GCM' })), invalidWrapped);
    for (const payload of [{ jti: 'j2', exp }, { t: 't', exp }, { t: 't', jti: 'j3' }, { t: 't', jti: 'j4', exp: String(exp) }, 'just a string']) {
      await assert.rejects(tokens.unwrap(await encrypt(payload, { alg: 'dir', enc: 'A256GCM' })), invalidWrapped, JSON.stringify(payload));
    }
  });

  it('refuses an ID token presented as a wrapped token', async () => {
    const { tokens } = setup();
    await assert.rejects(tokens.unwrap((await tokens.issue(alice, caps)).token), invalidWrapped);
  });

  it('refuses a wrapped token over 16 KiB', async () => {
    const { tokens } = setup();
    const wrapped = await tokens.wrap('x'.repeat(13 * 1024));
    assert.ok(wrapped.length > 16 * 1024);
    await assert.rejects(tokens.unwrap(wrapped), invalidWrapped);
  });
});
