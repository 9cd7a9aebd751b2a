import assert from 'node:assert/strict';
import { X509Certificate, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { ManualClock, MeshidError, createLogger, isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import { createAuthority, issueLeaf } from '../../src/pki/index.ts';
import {
  LoginService,
  MemorySessionRevocations,
  MemoryUsedOnce,
  PROOF_CONTEXT,
  SESSION_TTL_MS,
  SessionTokens,
  StaticSessionKeys,
  TokenReviewRecheck,
  bearerExpiry,
  claimedExpiry,
  installationAudience,
  type Capabilities,
  type Identity,
  type KubeReviews,
  type SessionTokenOptions,
} from '../../src/authn/index.ts';

const HOUR = 3600_000;
const log = createLogger('sessions-test', 'silent');
const caps: Capabilities = { 'pods/list': true };
const bob: Identity = { name: 'bob', groups: ['ops'] };
const is = (code: ErrorCode) => (e: unknown): boolean => isMeshidError(e, code);

/** A JWT-shaped bearer token whose payload says `exp`; its signature is never looked at. */
function jwt(expSeconds: number, marker = 'x'): string {
  const part = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part({ exp: expSeconds, sub: marker })}.c2lnbmF0dXJl`;
}

/** TokenReview as a test decides it: accepted tokens, refused ones, or Kubernetes away. */
class ScriptedReviews implements KubeReviews {
  readonly asked: string[] = [];
  readonly accepted = new Map<string, Identity>();
  away = false;

  async reviewToken(token: string): Promise<Identity> {
    this.asked.push(token);
    if (this.away) throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes is unavailable');
    const user = this.accepted.get(token);
    if (!user) throw new MeshidError('ERR_LOGIN_FAILED', 'Kubernetes did not accept the token');
    return user;
  }

  async capabilities(): Promise<Capabilities> {
    return caps;
  }
}

function world(options: { intervalMs?: number } = {}) {
  const clock = new ManualClock(Date.now());
  const keys = new StaticSessionKeys();
  const reviews = new ScriptedReviews();
  const usedOnce = new MemoryUsedOnce(clock);
  const revocations = new MemorySessionRevocations();
  const audience = installationAudience('meshid-system');
  // Two replicas: the same key and the same shared stores (in the server, Kubernetes).
  const replica = (extra: SessionTokenOptions = {}): SessionTokens =>
    new SessionTokens(keys, clock, {
      usedOnce,
      revocations,
      audience,
      recheck: new TokenReviewRecheck(reviews, { intervalMs: options.intervalMs ?? 30_000, sessionTtlMs: SESSION_TTL_MS, clock, log }),
      ...extra,
    });
  const tokens = replica();
  const login = (clientCa = { roots: async (): Promise<X509Certificate[]> => [] }) => new LoginService({ reviews, clientCa, tokens, keys, usedOnce, audience, clock });
  return { clock, keys, reviews, usedOnce, revocations, audience, tokens, replica, login };
}

describe('a session ends no later than its credential', () => {
  it('reads a bearer JWT exp without trusting it, and nothing from opaque tokens', () => {
    assert.equal(bearerExpiry(jwt(2_000_000_000)), 2_000_000_000_000);
    for (const opaque of ['static-token', 'a.b', 'a.%%%.c', jwt(-5), `${jwt(1)}.extra`]) assert.equal(bearerExpiry(opaque), undefined, opaque);
  });

  it('takes the client-reported expiry only as an RFC 3339 time', () => {
    assert.equal(claimedExpiry(undefined), undefined);
    assert.equal(claimedExpiry('2030-01-01T00:00:00Z'), Date.UTC(2030, 0, 1));
    for (const bad of ['tomorrow', 42, '', 'x'.repeat(65)]) assert.throws(() => claimedExpiry(bad), is('ERR_INVALID_ARGUMENT'), String(bad));
  });

  it('caps a bearer session at the token exp, and at the exec expiry the client reports, whichever comes first', async () => {
    const w = world();
    const token = jwt(Math.floor((w.clock.now() + HOUR) / 1000));
    w.reviews.accepted.set(token, bob);
    const capped = await w.login().login({ type: 'bearer', token });
    assert.equal(capped.expiresAt, Math.floor((w.clock.now() + HOUR) / 1000) * 1000);
    assert.equal((await w.tokens.verify(capped.token)).expiresAt, capped.expiresAt);
    const exec = await w.login().login({ type: 'bearer', token, expiresAt: w.clock.now() + 60_000 });
    assert.equal(exec.expiresAt, w.clock.now() + 60_000);
    // It can only shorten: a later claim leaves the token's own exp in force.
    const later = await w.login().login({ type: 'bearer', token, expiresAt: w.clock.now() + 5 * HOUR });
    assert.equal(later.expiresAt, capped.expiresAt);
    w.reviews.accepted.set('opaque', bob);
    assert.equal((await w.login().login({ type: 'bearer', token: 'opaque' })).expiresAt, w.clock.now() + SESSION_TTL_MS);
    await assert.rejects(w.login().login({ type: 'bearer', token, expiresAt: w.clock.now() - 1 }), is('ERR_LOGIN_FAILED'));
  });

  it("caps a certificate session at the certificate's notAfter", async () => {
    const ca = await createAuthority('cluster-client-ca');
    // Valid for an hour: a 10 h session would outlive it.
    const leaf = await issueLeaf(ca, { commonName: 'alice', usage: 'client', validDays: 1 / 24 });
    const w = world();
    const login = w.login({ roots: async () => [new X509Certificate(ca.certPem)] });
    const { challenge } = login.challenge();
    const signature = sign('sha256', Buffer.from(PROOF_CONTEXT + challenge), leaf.keyPem).toString('base64');
    const result = await login.login({ type: 'certificate', certificate: leaf.certPem, challenge, signature });
    assert.equal(result.expiresAt, Date.parse(new X509Certificate(leaf.certPem).validTo));
    assert.ok(result.expiresAt < w.clock.now() + 2 * HOUR);
  });
});

describe('a session re-checks its bearer credential', () => {
  it('carries the credential sealed, not readable in the token', async () => {
    const w = world();
    w.reviews.accepted.set('kube-token-SECRET', bob);
    const { token } = await w.login().login({ type: 'bearer', token: 'kube-token-SECRET' });
    const payload = Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8');
    assert.doesNotMatch(payload, /SECRET/);
    assert.equal(typeof (JSON.parse(payload) as { cred?: unknown }).cred, 'string');
  });

  it('asks TokenReview again at most once per interval, on any replica, and ends the session when it says no', async () => {
    const w = world({ intervalMs: 30_000 });
    w.reviews.accepted.set('kube-token', bob);
    const { token } = await w.login().login({ type: 'bearer', token: 'kube-token' });
    const other = w.replica();
    w.reviews.asked.length = 0;
    await w.tokens.verify(token);
    await w.tokens.verify(token);
    await other.verify(token);
    assert.deepEqual(w.reviews.asked, ['kube-token', 'kube-token'], 'once per replica per interval, with the carried token');
    w.reviews.accepted.delete('kube-token');
    w.clock.advance(29_000);
    await w.tokens.verify(token);
    w.clock.advance(2_000);
    await assert.rejects(w.tokens.verify(token), is('ERR_SESSION_CREDENTIAL_REVOKED'));
    // The refusal stands without asking again, even if the apiserver later forgot the answer.
    const asked = w.reviews.asked.length;
    w.reviews.accepted.set('kube-token', bob);
    await assert.rejects(w.tokens.verify(token), is('ERR_SESSION_CREDENTIAL_REVOKED'));
    assert.equal(w.reviews.asked.length, asked);
  });

  it('shares one review between concurrent requests of a session', async () => {
    const w = world();
    w.reviews.accepted.set('kube-token', bob);
    const { token } = await w.login().login({ type: 'bearer', token: 'kube-token' });
    w.reviews.asked.length = 0;
    await Promise.all([w.tokens.verify(token), w.tokens.verify(token), w.tokens.verify(token)]);
    assert.equal(w.reviews.asked.length, 1);
  });

  it('keeps the last answer while Kubernetes is away, and asks again one interval later', async () => {
    const w = world({ intervalMs: 30_000 });
    w.reviews.accepted.set('kube-token', bob);
    const { token } = await w.login().login({ type: 'bearer', token: 'kube-token' });
    await w.tokens.verify(token);
    w.clock.advance(31_000);
    w.reviews.away = true;
    w.reviews.asked.length = 0;
    assert.equal((await w.tokens.verify(token)).user.name, 'bob');
    await w.tokens.verify(token);
    assert.equal(w.reviews.asked.length, 1, 'one attempt, then the replica waits an interval');
    w.reviews.away = false;
    w.reviews.accepted.delete('kube-token');
    w.clock.advance(31_000);
    await assert.rejects(w.tokens.verify(token), is('ERR_SESSION_CREDENTIAL_REVOKED'));
  });

  it('ends a session whose credential now names someone else', async () => {
    const w = world();
    w.reviews.accepted.set('kube-token', bob);
    const { token } = await w.login().login({ type: 'bearer', token: 'kube-token' });
    w.reviews.accepted.set('kube-token', { name: 'mallory', groups: [] });
    await assert.rejects(w.tokens.verify(token), is('ERR_SESSION_CREDENTIAL_REVOKED'));
  });

  it('does not re-check a certificate session (nothing to ask), nor one issued without a credential', async () => {
    const w = world();
    const { token } = await w.tokens.issue(bob, caps);
    await w.tokens.verify(token);
    assert.equal(w.reviews.asked.length, 0);
  });
});

describe('logout and single use across replicas', () => {
  it('a logged-out session is token-revoked on every replica; other sessions stand', async () => {
    const w = world();
    const mine = await w.tokens.issue(bob, caps);
    const theirs = await w.tokens.issue(bob, caps);
    await w.replica().revoke(await w.tokens.verify(mine.token));
    await assert.rejects(w.tokens.verify(mine.token), is('ERR_TOKEN_REVOKED'));
    await assert.rejects(w.replica().verify(mine.token), is('ERR_TOKEN_REVOKED'));
    assert.equal((await w.tokens.verify(theirs.token)).jti, theirs.session.jti);
  });

  it('a wrapped token opens once across replicas, and only at the installation it was made for', async () => {
    const w = world();
    const { token } = await w.tokens.issue(bob, caps);
    const wrapped = await w.tokens.wrap(token);
    assert.equal(await w.replica().unwrap(wrapped), token);
    await assert.rejects(w.tokens.unwrap(wrapped), is('ERR_WRAPPED_TOKEN_REPLAYED'));
    // Same key (a copied Secret), another installation: refused as not for it.
    const elsewhere = w.replica({ audience: installationAudience('other-meshid') });
    await assert.rejects(elsewhere.unwrap(await w.tokens.wrap(token)), is('ERR_WRAPPED_TOKEN_INVALID'));
  });

  it('a certificate proof is accepted once across replicas; a garbage proof spends nothing; a challenge of another installation is refused', async () => {
    const ca = await createAuthority('cluster-client-ca');
    const leaf = await issueLeaf(ca, { commonName: 'alice', usage: 'client' });
    const w = world();
    const clientCa = { roots: async () => [new X509Certificate(ca.certPem)] };
    const prove = (challenge: string): string => sign('sha256', Buffer.from(PROOF_CONTEXT + challenge), leaf.keyPem).toString('base64');
    const { challenge, audience } = w.login(clientCa).challenge();
    assert.equal(audience, w.audience);
    await assert.rejects(w.login(clientCa).login({ type: 'certificate', certificate: leaf.certPem, challenge, signature: Buffer.from('garbage').toString('base64') }), is('ERR_LOGIN_FAILED'));
    const proof = { type: 'certificate' as const, certificate: leaf.certPem, challenge, signature: prove(challenge) };
    assert.equal((await w.login(clientCa).login(proof)).user.name, 'alice', 'the garbage proof did not use the challenge up');
    await assert.rejects(w.login(clientCa).login(proof), is('ERR_CHALLENGE_INVALID'));

    const other = new LoginService({ reviews: w.reviews, clientCa, tokens: w.tokens, keys: w.keys, usedOnce: new MemoryUsedOnce(w.clock), audience: installationAudience('other-meshid'), clock: w.clock });
    const foreign = other.challenge().challenge;
    await assert.rejects(w.login(clientCa).login({ type: 'certificate', certificate: leaf.certPem, challenge: foreign, signature: prove(foreign) }), is('ERR_CHALLENGE_INVALID'));
  });

  it('forgets used ids once they have expired', async () => {
    const clock = new ManualClock(Date.now());
    const used = new MemoryUsedOnce(clock);
    assert.equal(await used.claim('challenge', 'n', clock.now() + 1000), true);
    assert.equal(await used.claim('challenge', 'n', clock.now() + 1000), false);
    assert.equal(await used.claim('wrapped-token', 'n', clock.now() + 1000), true, 'kinds do not collide');
    clock.advance(1001);
    assert.equal(await used.claim('challenge', 'n', clock.now() + 1000), true);
  });
});
