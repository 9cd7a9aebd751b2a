import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, jwtVerify } from 'jose';
import { ManualClock, isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import {
  ADMIN_GROUP,
  ADMIN_USER,
  AUTHENTICATED_GROUP,
  CLOCK_SKEW_SECONDS,
  DEFAULT_IDENTITY_PREFIX,
  DEFAULT_MAX_VALID_FOR,
  DisabledIssuer,
  KeyedIssuer,
  NOT_BEFORE_BACKDATE_SECONDS,
  StaticPublicKeys,
  UserTokenValidator,
  encodeKey,
  generateSigningKeyPem,
  identityPrefixProblem,
  noRevocations,
  parseDuration,
  parsePrivateKey,
  parsePublicKey,
  prefixedIdentity,
  publicKeyPem,
  signUserToken,
  type Issuer,
  type PublicKeySource,
  type Revocations,
  type SigningKey,
} from '../../src/tokens/index.ts';
import { parseServerConfig, type ServerConfigInput } from '../../src/server/config.ts';

const START = Date.UTC(2030, 0, 1);
const NOW_S = START / 1000;
const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Two real keys: A is the one the validator knows (kid "1"), B is an impostor.
const PEM_A = generateSigningKeyPem();
const KEY_A = parsePrivateKey(PEM_A);
const PUBLIC_PEM_A = publicKeyPem(KEY_A);
const KEY_B = parsePrivateKey(generateSigningKeyPem());
const SIGNING_A: SigningKey = { kid: '1', privateKey: KEY_A };

function setup(sources: PublicKeySource[] = [new StaticPublicKeys([{ kid: '1', key: parsePublicKey(PUBLIC_PEM_A) }])]) {
  const clock = new ManualClock(START);
  const revoked = new Set<string>();
  const revocations: Revocations = { isRevoked: (jti) => revoked.has(jti) };
  return { clock, revoked, validator: new UserTokenValidator(sources, revocations, clock) };
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function decode(segment: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

const HEADER = { alg: 'RS256', kid: '1', typ: 'JWT' };

/** The claims of a token valid at START; `undefined` in overrides drops a claim. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { Name: 'john', Groups: ['team-a'], iat: NOW_S, nbf: NOW_S - 300, exp: NOW_S + 3600, jti: randomUUID(), ...overrides };
}

/**
 * A token with any header and claims and a genuine signature, so a refusal can only come
 * from the defect under test and not from a broken signature.
 */
function craft(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject = KEY_A, hash = 'sha256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign(hash, Buffer.from(input), key).toString('base64url')}`;
}

function assertCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isMeshidError(error), `expected a MeshidError with ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

describe('signUserToken and UserTokenValidator', () => {
  it("round-trips: Kuma header and claims, iat = now and nbf = now - 300 s as Kuma's issuer sets them, exp = now + validFor", () => {
    const { validator } = setup();
    const token = signUserToken(SIGNING_A, { name: 'john', groups: ['team-a', 'team-b'], validForMs: DAY }, new ManualClock(START));
    const [h, p] = token.split('.');
    assert.deepEqual(decode(h), { alg: 'RS256', kid: '1', typ: 'JWT' });
    const payload = decode(p);
    assert.equal(payload['Name'], 'john');
    assert.deepEqual(payload['Groups'], ['team-a', 'team-b']);
    assert.equal(payload['iat'], NOW_S);
    assert.equal(payload['nbf'], NOW_S - 300);
    assert.equal(payload['exp'], NOW_S + DAY / SECOND);
    assert.match(String(payload['jti']), UUID);

    const user = validator.validate(token);
    assert.deepEqual(user, { name: 'mesh-system:john', groups: ['mesh-system:team-a', 'mesh-system:team-b', AUTHENTICATED_GROUP], jti: payload['jti'], expiresAt: (NOW_S + DAY / SECOND) * SECOND });
  });

  it('appends mesh-system:authenticated exactly once, even when the token already lists it or has no Groups', () => {
    const { validator } = setup();
    const listed = signUserToken(SIGNING_A, { name: 'john', groups: [AUTHENTICATED_GROUP, 'team-a'], validForMs: HOUR }, new ManualClock(START));
    assert.deepEqual(validator.validate(listed).groups, ['mesh-system:team-a', AUTHENTICATED_GROUP]);
    assert.deepEqual(validator.validate(craft(HEADER, claims({ Groups: undefined }))).groups, [AUTHENTICATED_GROUP]);
    assert.deepEqual(validator.validate(craft(HEADER, claims({ Groups: [] }))).groups, [AUTHENTICATED_GROUP]);
  });

  it('takes "Groups": null, as kumactl writes it without --group, for no groups; any other non-list stays ERR_TOKEN_INVALID', () => {
    const { validator } = setup();
    const jti = randomUUID();
    assert.deepEqual(validator.validate(craft(HEADER, claims({ Name: 'n', Groups: null, jti }))), { name: 'mesh-system:n', groups: [AUTHENTICATED_GROUP], jti, expiresAt: (NOW_S + 3600) * SECOND });
    for (const groups of [false, 0, '', 'null', {}, [null], [['team-a']]]) {
      assertCode(() => validator.validate(craft(HEADER, claims({ Groups: groups }))), 'ERR_TOKEN_INVALID');
    }
  });

  it('gives every token its own jti', () => {
    const clock = new ManualClock(START);
    const jtis = new Set(Array.from({ length: 20 }, () => decode(signUserToken(SIGNING_A, { name: 'john', groups: [], validForMs: HOUR }, clock).split('.')[1])['jti']));
    assert.equal(jtis.size, 20);
  });

  it('makes tokens that jose verifies as standard RS256 JWTs', async () => {
    const token = signUserToken(SIGNING_A, { name: 'john', groups: ['team-a'], validForMs: HOUR }, new ManualClock(START));
    const { payload, protectedHeader } = await jwtVerify(token, createPublicKey(KEY_A), { algorithms: ['RS256'], currentDate: new Date(START) });
    assert.equal(protectedHeader.kid, '1');
    assert.equal(payload['Name'], 'john');
  });

  it('accepts a token until its exp, and refuses it from then on with ERR_TOKEN_EXPIRED', () => {
    const { validator, clock } = setup();
    const token = signUserToken(SIGNING_A, { name: 'john', groups: [], validForMs: HOUR }, new ManualClock(START));
    clock.advance(HOUR - SECOND);
    assert.equal(validator.validate(token).name, 'mesh-system:john');
    clock.advance(SECOND);
    assertCode(() => validator.validate(token), 'ERR_TOKEN_EXPIRED');
  });

  it('accepts at once a token from an issuer whose clock runs up to the nbf backdate plus the leeway ahead, and no further', () => {
    const { validator } = setup();
    const ahead = (NOT_BEFORE_BACKDATE_SECONDS + CLOCK_SKEW_SECONDS) * SECOND;
    const token = signUserToken(SIGNING_A, { name: 'john', groups: [], validForMs: HOUR }, new ManualClock(START + ahead));
    assert.equal(validator.validate(token).name, 'mesh-system:john');
    const early = signUserToken(SIGNING_A, { name: 'john', groups: [], validForMs: HOUR }, new ManualClock(START + ahead + SECOND));
    assertCode(() => validator.validate(early), 'ERR_TOKEN_INVALID');
  });

  it('refuses a token whose nbf is far in the future with ERR_TOKEN_INVALID', () => {
    const { validator } = setup();
    assertCode(() => validator.validate(craft(HEADER, claims({ nbf: NOW_S + 3600, exp: NOW_S + 7200 }))), 'ERR_TOKEN_INVALID');
  });

  it('refuses a revoked jti with ERR_TOKEN_REVOKED as soon as it is listed, and only that one', () => {
    const { validator, revoked } = setup();
    const clock = new ManualClock(START);
    const token = signUserToken(SIGNING_A, { name: 'john', groups: [], validForMs: HOUR }, clock);
    const other = signUserToken(SIGNING_A, { name: 'jane', groups: [], validForMs: HOUR }, clock);
    const { jti } = validator.validate(token);
    revoked.add(jti);
    assertCode(() => validator.validate(token), 'ERR_TOKEN_REVOKED');
    assert.equal(validator.validate(other).name, 'mesh-system:jane');
  });

  it('refuses an empty name and a validFor that is not positive with ERR_INVALID_ARGUMENT', () => {
    assertCode(() => signUserToken(SIGNING_A, { name: '', groups: [], validForMs: HOUR }), 'ERR_INVALID_ARGUMENT');
    assertCode(() => signUserToken(SIGNING_A, { name: 'john', groups: ['system:masters'], validForMs: HOUR }), 'ERR_TOKEN_IDENTITY_RESERVED');
    assertCode(() => signUserToken(SIGNING_A, { name: 'system:node:n1', groups: [], validForMs: HOUR }), 'ERR_TOKEN_IDENTITY_RESERVED');
    for (const validForMs of [0, -HOUR, Number.NaN]) {
      assertCode(() => signUserToken(SIGNING_A, { name: 'john', groups: [], validForMs }), 'ERR_INVALID_ARGUMENT');
    }
  });
});

describe('interop: tokens from other RS256 issuers (jose)', () => {
  const nowS = NOW_S;
  const joseToken = async (kid: string): Promise<string> =>
    new SignJWT({ Name: 'ci-bot', Groups: ['automation'] })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuedAt(nowS)
      .setNotBefore(nowS)
      .setJti(randomUUID())
      .setExpirationTime(nowS + 3600)
      .sign(createPrivateKey(PEM_A));

  it('validates with the PKCS#1 public key that generate public-key prints', async () => {
    assert.match(PUBLIC_PEM_A, /^-----BEGIN RSA PUBLIC KEY-----\n/);
    const { validator } = setup([new StaticPublicKeys([{ kid: 'key-1', key: parsePublicKey(PUBLIC_PEM_A) }])]);
    const user = validator.validate(await joseToken('key-1'));
    assert.deepEqual({ name: user.name, groups: user.groups }, { name: 'mesh-system:ci-bot', groups: ['mesh-system:automation', AUTHENTICATED_GROUP] });
  });

  it('validates with a PKIX (SPKI) public key, as openssl and most tools write it', async () => {
    const spki = createPublicKey(createPrivateKey(PEM_A)).export({ type: 'spki', format: 'pem' }).toString();
    assert.match(spki, /^-----BEGIN PUBLIC KEY-----\n/);
    const { validator } = setup([new StaticPublicKeys([{ kid: 'key-1', key: parsePublicKey(spki) }])]);
    assert.equal(validator.validate(await joseToken('key-1')).name, 'mesh-system:ci-bot');
  });

  it('looks the key up by kid across sources, and refuses a kid no source knows', async () => {
    const { validator } = setup([
      new StaticPublicKeys([{ kid: 'other', key: createPublicKey(KEY_B) }]),
      new StaticPublicKeys([{ kid: 'key-1', key: createPublicKey(KEY_A) }]),
    ]);
    assert.equal(validator.validate(await joseToken('key-1')).name, 'mesh-system:ci-bot');
    assertCode(() => validator.validate(craft({ ...HEADER, kid: 'key-2' }, claims())), 'ERR_TOKEN_INVALID');
  });
});

describe('UserTokenValidator refusals', () => {
  it('accepts what craft() makes, so the refusals below test one defect each', () => {
    const { validator } = setup();
    assert.equal(validator.validate(craft(HEADER, claims())).name, 'mesh-system:john');
  });

  it('refuses alg none, with or without a signature segment', () => {
    const { validator } = setup();
    const input = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}`;
    assertCode(() => validator.validate(`${input}.`), 'ERR_TOKEN_INVALID');
    assertCode(() => validator.validate(craft({ alg: 'none', kid: '1', typ: 'JWT' }, claims())), 'ERR_TOKEN_INVALID');
  });

  it('refuses HS256 signed with the public key PEM as the HMAC secret (algorithm confusion)', () => {
    const { validator } = setup();
    const spki = createPublicKey(KEY_A).export({ type: 'spki', format: 'pem' }).toString();
    for (const secret of [PUBLIC_PEM_A, spki]) {
      const input = `${b64({ alg: 'HS256', kid: '1', typ: 'JWT' })}.${b64(claims())}`;
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      assertCode(() => validator.validate(token), 'ERR_TOKEN_INVALID');
    }
  });

  it('refuses RS512 even with a genuine RS512 signature by the right key', () => {
    const { validator } = setup();
    assertCode(() => validator.validate(craft({ ...HEADER, alg: 'RS512' }, claims(), KEY_A, 'sha512')), 'ERR_TOKEN_INVALID');
  });

  it('refuses a missing, numeric, unknown or path-like kid', () => {
    // The source holds kid "1", so a validator that coerced kid 1 to "1" would accept it.
    const asked: string[] = [];
    const source = new StaticPublicKeys([{ kid: '1', key: createPublicKey(KEY_A) }]);
    const { validator } = setup([{ publicKey: (kid) => (asked.push(kid), source.publicKey(kid)) }]);
    const noKid = { alg: 'RS256', typ: 'JWT' };
    for (const header of [noKid, { ...HEADER, kid: 1 }, { ...HEADER, kid: '' }, { ...HEADER, kid: 'nope' }, { ...HEADER, kid: '../../etc/passwd' }]) {
      assertCode(() => validator.validate(craft(header, claims())), 'ERR_TOKEN_INVALID');
    }
    // Only string kids reach a key source; the rest are refused before any lookup.
    assert.deepEqual(asked, ['nope', '../../etc/passwd']);
  });

  it('refuses a flipped signature byte, an edited payload, and a token signed by another key under a known kid', () => {
    const { validator } = setup();
    const token = craft(HEADER, claims());
    const [h, p, s] = token.split('.');
    // Flip a byte of the decoded signature: editing the last base64url character may only touch padding bits.
    const sig = Buffer.from(s ?? '', 'base64url');
    sig[10] = (sig[10] ?? 0) ^ 0x01;
    assertCode(() => validator.validate(`${h}.${p}.${sig.toString('base64url')}`), 'ERR_TOKEN_INVALID');
    assertCode(() => validator.validate(`${h}.${b64({ ...decode(p), Name: 'root' })}.${s}`), 'ERR_TOKEN_INVALID');
    assertCode(() => validator.validate(craft(HEADER, claims(), KEY_B)), 'ERR_TOKEN_INVALID');
  });

  it('refuses a payload of several megabytes with ERR_TOKEN_INVALID', () => {
    const { validator } = setup();
    assertCode(() => validator.validate(craft(HEADER, claims({ Name: 'x'.repeat(4 * 1024 * 1024) }))), 'ERR_TOKEN_INVALID');
  });

  it('refuses strings that are not compact JWS', () => {
    const { validator } = setup();
    const good = craft(HEADER, claims());
    const [h, p, s] = good.split('.');
    for (const garbage of ['', 'a.b', 'a.b.c', 'a.b.c.d', '..', `${h}.${p}.${s}.${s}`, `${h}.${p}`, 'ey!!.ey$$.***', `${h}=.${p}.${s}`, `${h}.${p}.${s} `, `${b64([HEADER])}.${p}.${s}`, `${b64('RS256')}.${p}.${s}`]) {
      assertCode(() => validator.validate(garbage), 'ERR_TOKEN_INVALID');
    }
  });

  it('refuses a missing or empty Name, Groups that is not a list of strings, and a missing jti or exp', () => {
    const { validator } = setup();
    const bad = [
      claims({ Name: undefined }),
      claims({ Name: '' }),
      claims({ Name: 42 }),
      claims({ Groups: 'team-a' }),
      claims({ Groups: [1] }),
      claims({ Groups: ['team-a', null] }),
      claims({ Groups: { 0: 'team-a' } }),
      claims({ jti: undefined }),
      claims({ jti: '' }),
      claims({ jti: 7 }),
      claims({ exp: undefined }),
      claims({ exp: String(NOW_S + 3600) }),
    ];
    for (const payload of bad) assertCode(() => validator.validate(craft(HEADER, payload)), 'ERR_TOKEN_INVALID');
  });

  it('refuses a correctly signed token that claims a reserved Kubernetes name or group (system:masters, service accounts)', () => {
    const { validator } = setup();
    for (const payload of [claims({ Groups: ['ops', 'system:masters'] }), claims({ Groups: ['SYSTEM:MASTERS'] }), claims({ Name: 'system:serviceaccount:kube-system:default' }), claims({ Name: 'system:admin' })]) {
      assertCode(() => validator.validate(craft(HEADER, payload)), 'ERR_TOKEN_INVALID');
    }
  });

  it('refuses a crit header it cannot honour', () => {
    const { validator } = setup();
    assertCode(() => validator.validate(craft({ ...HEADER, crit: ['exp'] }, claims())), 'ERR_TOKEN_INVALID');
    assertCode(() => validator.validate(craft({ ...HEADER, crit: [] }, claims())), 'ERR_TOKEN_INVALID');
  });
});

describe('issuers', () => {
  it('KeyedIssuer signs with whatever key is current at each call (rotation)', () => {
    const { validator } = setup([new StaticPublicKeys([{ kid: '1', key: createPublicKey(KEY_A) }, { kid: '2', key: createPublicKey(KEY_B) }])]);
    let current: SigningKey = SIGNING_A;
    const issuer = new KeyedIssuer(() => current, new ManualClock(START));
    const first = issuer.issue({ name: 'john', groups: [], validForMs: HOUR });
    current = { kid: '2', privateKey: KEY_B };
    const second = issuer.issue({ name: 'john', groups: [], validForMs: HOUR });
    assert.equal(decode(first.split('.')[0])['kid'], '1');
    assert.equal(decode(second.split('.')[0])['kid'], '2');
    assert.equal(validator.validate(second).name, 'mesh-system:john');
  });

  it('DisabledIssuer refuses every request with ERR_ISSUER_DISABLED', () => {
    const issuer: Issuer = new DisabledIssuer();
    assertCode(() => issuer.issue({ name: 'john', groups: [], validForMs: HOUR }), 'ERR_ISSUER_DISABLED');
  });
});

describe('parseDuration', () => {
  it('reads Go-style durations as kumactl takes them', () => {
    const cases: [string, number][] = [
      ['24h', 86_400_000],
      ['1h30m', 5_400_000],
      ['90s', 90_000],
      ['500ms', 500],
      ['2d', 2 * DAY],
      ['1m', 60_000],
      ['1.5h', 5_400_000],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  it('refuses what is not a duration with ERR_INVALID_ARGUMENT', () => {
    for (const text of ['', '0x', '24', 'h', '-1h', 'abc', '1h 30m', '1e3s', '24H']) {
      assertCode(() => parseDuration(text), 'ERR_INVALID_ARGUMENT');
    }
  });
});

describe('signing keys', () => {
  it('generateSigningKeyPem makes a fresh 2048-bit RSA key as PKCS#1 PEM', () => {
    assert.match(PEM_A, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    const key = createPrivateKey(PEM_A);
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    assert.notEqual(generateSigningKeyPem(), PEM_A);
  });

  it('publicKeyPem prints the PKCS#1 "RSA PUBLIC KEY" of the private key', () => {
    assert.match(PUBLIC_PEM_A, /^-----BEGIN RSA PUBLIC KEY-----\n[\s\S]+\n-----END RSA PUBLIC KEY-----\n$/);
    assert.equal(PUBLIC_PEM_A, createPublicKey(KEY_A).export({ type: 'pkcs1', format: 'pem' }).toString());
  });

  it('parsePrivateKey accepts PKCS#1, PKCS#8 and base64-wrapped PEM, all the same key', () => {
    const pkcs8 = createPrivateKey(PEM_A).export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.match(pkcs8, /^-----BEGIN PRIVATE KEY-----\n/);
    for (const input of [PEM_A, pkcs8, encodeKey(PEM_A, 'pem-base64'), encodeKey(pkcs8, 'pem-base64'), `\n  ${PEM_A}\n`]) {
      assert.equal(publicKeyPem(parsePrivateKey(input)), PUBLIC_PEM_A);
    }
  });

  it('parsePrivateKey refuses a 1024-bit RSA key, an EC key, a public key and garbage with ERR_INVALID_ARGUMENT', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const input of [small, ec.export({ type: 'sec1', format: 'pem' }).toString(), ec.export({ type: 'pkcs8', format: 'pem' }).toString(), PUBLIC_PEM_A, '', 'not a key']) {
      assertCode(() => parsePrivateKey(input), 'ERR_INVALID_ARGUMENT');
    }
  });

  it('parsePublicKey accepts PKCS#1, PKIX and base64-wrapped PEM, and refuses small, EC and garbage keys', () => {
    const spki = createPublicKey(KEY_A).export({ type: 'spki', format: 'pem' }).toString();
    for (const input of [PUBLIC_PEM_A, spki, encodeKey(PUBLIC_PEM_A, 'pem-base64')]) {
      assert.equal(parsePublicKey(input).export({ type: 'pkcs1', format: 'pem' }).toString(), PUBLIC_PEM_A);
    }
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const input of [small, ec, '', 'not a key']) assertCode(() => parsePublicKey(input), 'ERR_INVALID_ARGUMENT');
  });
});

describe('identity prefix: who a token is to Kubernetes', () => {
  const kubeIdentity = (token: string, prefix?: string) => {
    const validator = new UserTokenValidator([new StaticPublicKeys([{ kid: '1', key: createPublicKey(KEY_A) }])], noRevocations, new ManualClock(START), prefix);
    const { name, groups } = validator.validate(token);
    return { name, groups };
  };

  it('puts a Kuma token for john in team-a under mesh-system:, and leaves the claims as they were', () => {
    const token = signUserToken(SIGNING_A, { name: 'john', groups: ['team-a'], validForMs: HOUR }, new ManualClock(START));
    assert.deepEqual(kubeIdentity(token), { name: 'mesh-system:john', groups: ['mesh-system:team-a', AUTHENTICATED_GROUP] });
    const payload = decode(token.split('.')[1]);
    assert.equal(payload['Name'], 'john');
    assert.deepEqual(payload['Groups'], ['team-a']);
  });

  it('never names an existing Kubernetes user or group: carol and kubeadm:cluster-admins land under the prefix', () => {
    assert.deepEqual(kubeIdentity(craft(HEADER, claims({ Name: 'carol', Groups: ['kubeadm:cluster-admins', 'MESH-SYSTEM:admin', 'mesh-system'] }))), {
      name: 'mesh-system:carol',
      // Kubernetes names are case-sensitive, so only the exact prefix counts as already there.
      groups: ['mesh-system:kubeadm:cluster-admins', 'mesh-system:MESH-SYSTEM:admin', 'mesh-system:mesh-system', AUTHENTICATED_GROUP],
    });
  });

  it('keeps a value already under the prefix, so Kuma\'s admin token and "admin" are both mesh-system:admin', () => {
    assert.deepEqual(kubeIdentity(craft(HEADER, claims({ Name: ADMIN_USER, Groups: [ADMIN_GROUP] }))), { name: 'mesh-system:admin', groups: ['mesh-system:admin', AUTHENTICATED_GROUP] });
    assert.deepEqual(kubeIdentity(craft(HEADER, claims({ Name: 'admin', Groups: ['admin', 'mesh-system:admin'] }))), { name: 'mesh-system:admin', groups: ['mesh-system:admin', AUTHENTICATED_GROUP] });
  });

  it('applies a configured prefix the same way, and still adds mesh-system:authenticated as it is', () => {
    assert.deepEqual(kubeIdentity(craft(HEADER, claims({ Name: 'john', Groups: ['team-a', 'corp:ops', ADMIN_GROUP] })), 'corp:'), {
      name: 'corp:john',
      groups: ['corp:team-a', 'corp:ops', 'corp:mesh-system:admin', AUTHENTICATED_GROUP],
    });
  });

  it('refuses a prefix that is empty, reserved, a beginning of system:, or holds whitespace or control characters, with ERR_INVALID_ARGUMENT', () => {
    for (const prefix of ['', 'system:', 'SYSTEM:corp:', 'system:serviceaccount:', 'sys', 'System', 'system', 'corp :', 'corp:\t', '\ncorp:', 'corp\u0000:', 'corp\u200b:']) {
      assert.notEqual(identityPrefixProblem(prefix), undefined, JSON.stringify(prefix));
      assertCode(() => new UserTokenValidator([], noRevocations, new ManualClock(START), prefix), 'ERR_INVALID_ARGUMENT');
    }
    for (const prefix of ['mesh-system:', 'corp:', 'oidc#', 'systems:']) assert.equal(identityPrefixProblem(prefix), undefined, prefix);
  });

  it('maps names one by one: kept under the prefix, prefixed otherwise', () => {
    const cases: [string, string][] = [
      ['john', 'mesh-system:john'],
      ['mesh-system:john', 'mesh-system:john'],
      ['mesh-system', 'mesh-system:mesh-system'],
      ['kubeadm:cluster-admins', 'mesh-system:kubeadm:cluster-admins'],
    ];
    for (const [claim, kube] of cases) assert.equal(prefixedIdentity(claim, DEFAULT_IDENTITY_PREFIX), kube, claim);
  });
});

describe('validFor cap', () => {
  it('issues up to the default cap of 8760h and refuses anything longer with ERR_VALID_FOR_TOO_LONG', () => {
    const issuer = new KeyedIssuer(() => SIGNING_A, new ManualClock(START));
    assert.equal(parseDuration(DEFAULT_MAX_VALID_FOR), 365 * DAY);
    const atCap = issuer.issue({ name: 'john', groups: [], validForMs: 365 * DAY });
    assert.equal(decode(atCap.split('.')[1])['exp'], NOW_S + 365 * DAY / SECOND);
    for (const validFor of ['876000h', '8760h1s', '99999999999999999999h']) {
      assertCode(() => issuer.issue({ name: 'john', groups: [], validForMs: parseDuration(validFor) }), 'ERR_VALID_FOR_TOO_LONG');
    }
  });

  it('holds to a configured cap', () => {
    const issuer = new KeyedIssuer(() => SIGNING_A, new ManualClock(START), HOUR);
    assert.ok(issuer.issue({ name: 'john', groups: [], validForMs: HOUR }));
    assertCode(() => issuer.issue({ name: 'john', groups: [], validForMs: HOUR + 1 }), 'ERR_VALID_FOR_TOO_LONG');
  });
});

describe('server config: userTokens', () => {
  it('defaults to prefix mesh-system: and a cap of 8760h', () => {
    const { userTokens } = parseServerConfig({});
    assert.equal(userTokens.identityPrefix, 'mesh-system:');
    assert.equal(userTokens.maxValidFor, '8760h');
    assert.equal(parseServerConfig({ userTokens: { identityPrefix: 'corp:', maxValidFor: '720h' } }).userTokens.identityPrefix, 'corp:');
  });

  it('refuses a bad identityPrefix or maxValidFor with an error naming the field', () => {
    const cases: [ServerConfigInput, RegExp][] = [
      [{ userTokens: { identityPrefix: '' } }, /^server config userTokens\.identityPrefix: must not be empty/],
      [{ userTokens: { identityPrefix: 'system:' } }, /^server config userTokens\.identityPrefix: must not start with "system:"/],
      [{ userTokens: { identityPrefix: 'sys' } }, /^server config userTokens\.identityPrefix: must not start with "system:"/],
      [{ userTokens: { identityPrefix: 'mesh system:' } }, /^server config userTokens\.identityPrefix: must not hold whitespace/],
      [{ userTokens: { maxValidFor: 'forever' } }, /^server config userTokens\.maxValidFor: must be a positive duration/],
      [{ userTokens: { maxValidFor: '0s' } }, /^server config userTokens\.maxValidFor: must be a positive duration/],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => parseServerConfig(input), (error: unknown) => isMeshidError(error, 'ERR_INVALID_ARGUMENT') && message.test(error.message), JSON.stringify(input));
    }
  });
});

describe('tokens seen before', () => {
  /** A key source that counts lookups and can forget its key, as a deleted signing-key Secret does. */
  function forgetfulSource() {
    let key: KeyObject | undefined = parsePublicKey(PUBLIC_PEM_A);
    return { source: { publicKey: (kid: string) => (kid === '1' ? key : undefined) }, forget: () => (key = undefined), replace: (k: KeyObject) => (key = k) };
  }

  it('answers a repeated token with the same identity, and still honours revocation, expiry and the key at once', () => {
    const { clock, revoked, validator } = setup();
    const token = craft(HEADER, claims({ exp: NOW_S + 60 }));
    const first = validator.validate(token);
    assert.deepEqual(validator.validate(token), first);
    revoked.add(first.jti);
    assertCode(() => validator.validate(token), 'ERR_TOKEN_REVOKED');
    revoked.delete(first.jti);
    clock.advance(61 * SECOND);
    assertCode(() => validator.validate(token), 'ERR_TOKEN_EXPIRED');
  });

  it('refuses a remembered token once its signing key is gone or replaced', () => {
    const keys = forgetfulSource();
    const validator = new UserTokenValidator([keys.source], noRevocations, new ManualClock(START));
    const token = craft(HEADER, claims());
    assert.equal(validator.validate(token).name, 'mesh-system:john');
    keys.replace(createPublicKey(KEY_B));
    assertCode(() => validator.validate(token), 'ERR_TOKEN_INVALID');
    keys.forget();
    assertCode(() => validator.validate(token), 'ERR_TOKEN_INVALID');
  });

  it('never serves a token that differs from a remembered one, even in its signature alone', () => {
    const { validator } = setup();
    const token = craft(HEADER, claims());
    validator.validate(token);
    const [h, p, s = ''] = token.split('.');
    // A character well inside the signature: the last one carries padding bits a decoder drops.
    const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    assertCode(() => validator.validate(flipped), 'ERR_TOKEN_INVALID');
    assertCode(() => validator.validate(`${h}.${b64({ ...decode(p), Name: 'root' })}.${s}`), 'ERR_TOKEN_INVALID');
  });

  it('does not remember refusals: a token refused for revocation passes once it is no longer revoked', () => {
    const { revoked, validator } = setup();
    const jti = randomUUID();
    const token = craft(HEADER, claims({ jti }));
    revoked.add(jti);
    assertCode(() => validator.validate(token), 'ERR_TOKEN_REVOKED');
    revoked.delete(jti);
    assert.equal(validator.validate(token).jti, jti);
  });
});
