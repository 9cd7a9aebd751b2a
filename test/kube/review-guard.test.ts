import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, isMeshidError } from '../../src/core/index.ts';
import { ReviewRateLimitedError, TokenReviewGuard, tokenProblem, type ReviewOutcome, type ReviewVerdict } from '../../src/kube/index.ts';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const jwt = (payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'RS256', kid: 'k' }): string => `${b64(header)}.${b64(payload)}.c2lnbmF0dXJl`;

/** A guard over a fake review that counts how often it was asked, as the apiserver would be. */
function harness(options: { burst?: number; perSecond?: number; refusalCacheMs?: number; issuers?: string[]; jwtOnly?: boolean } = {}) {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const outcomes: ReviewOutcome[] = [];
  const guard = new TokenReviewGuard({
    clock,
    rate: { burst: options.burst ?? 3, perSecond: options.perSecond ?? 1 },
    ...(options.refusalCacheMs !== undefined ? { refusalCacheMs: options.refusalCacheMs } : {}),
    issuers: options.issuers,
    jwtOnly: options.jwtOnly ?? false,
    observe: (o) => outcomes.push(o),
  });
  let asked = 0;
  const review = (token: string, client: string | undefined, accept = false): Promise<ReviewVerdict<string>> =>
    guard.review(token, client, async () => {
      asked++;
      return accept ? { accepted: true, value: 'ok' } : { accepted: false, reason: 'apiserver: invalid bearer token' };
    });
  return { clock, review, outcomes, asked: () => asked };
}

describe('tokenProblem: what cannot be a token of this cluster', () => {
  const now = Date.UTC(2030, 0, 1);
  const context = { issuers: [ISSUER], jwtOnly: false, now };
  const exp = Math.floor(now / 1000) + 600;

  it('lets through what only a review can judge: static, bootstrap and webhook tokens, and a fresh JWT of our issuer', () => {
    for (const token of ['Xr4n0mB4se64urlStaticToken_-', 'abcdef.0123456789abcdef', 'k8s-aws-v1.aHR0cHM6Ly9zdHM', 'ya29.a0Af.Hw-x_y', jwt({ iss: ISSUER, exp })]) {
      assert.equal(tokenProblem(token, context), undefined, token);
    }
  });

  it('refuses empty, oversized and oddly-charactered tokens', () => {
    assert.match(tokenProblem('', context) ?? '', /empty/);
    assert.match(tokenProblem('a'.repeat(16 * 1024 + 1), context) ?? '', /longer/);
    for (const token of ['has space', 'quote"', 'semi;colon', 'é', 'a=b']) assert.match(tokenProblem(token, context) ?? '', /characters/, token);
  });

  it('refuses a JWT whose parts do not decode, that has expired, or whose issuer is not ours', () => {
    assert.match(tokenProblem(`eyJub3Q.${b64({ iss: ISSUER })}.c2ln`, context) ?? '', /header/);
    assert.match(tokenProblem(`${b64({ alg: 'RS256' })}.bm90IGpzb24.c2ln`, context) ?? '', /payload/);
    assert.match(tokenProblem(jwt({ iss: ISSUER, exp: Math.floor(now / 1000) - 120 }), context) ?? '', /expired/);
    assert.match(tokenProblem(jwt({ iss: ISSUER, exp: 'soon' }), context) ?? '', /expired/);
    assert.match(tokenProblem(jwt({ iss: 'https://other.example', exp }), context) ?? '', /issuer "https:\/\/other.example"/);
    assert.match(tokenProblem(jwt({ exp }), context) ?? '', /issuer undefined/);
  });

  it('allows a minute of clock skew past exp, and any issuer when the issuers are unknown', () => {
    assert.equal(tokenProblem(jwt({ iss: ISSUER, exp: Math.floor(now / 1000) - 30 }), context), undefined);
    assert.equal(tokenProblem(jwt({ iss: 'https://oidc.example', exp }), { ...context, issuers: undefined }), undefined);
  });

  it('for the CA, refuses anything that is not a JWT', () => {
    assert.match(tokenProblem('Xr4n0mB4se64urlStaticToken', { ...context, jwtOnly: true }) ?? '', /not a JWT/);
    assert.equal(tokenProblem(jwt({ iss: ISSUER, exp }), { ...context, jwtOnly: true }), undefined);
  });
});

describe('TokenReviewGuard', () => {
  it('never asks about a token that cannot be one, and says why in its own words', async () => {
    const h = harness({ issuers: [ISSUER] });
    const verdict = await h.review(jwt({ iss: 'https://evil.example' }), '10.0.0.1');
    assert.deepEqual(verdict, { accepted: false, reason: 'the JWT\'s issuer "https://evil.example" is not one this cluster accepts', byGuard: true });
    assert.equal(h.asked(), 0);
    assert.deepEqual(h.outcomes, ['screened']);
  });

  it('remembers a refusal by the token for refusalCacheMs, then asks again', async () => {
    const h = harness({ refusalCacheMs: 5000, burst: 10 });
    assert.equal((await h.review('garbage-token', '10.0.0.1')).accepted, false);
    const again = await h.review('garbage-token', '10.0.0.2');
    assert.deepEqual(again, { accepted: false, reason: 'refused moments ago: apiserver: invalid bearer token' });
    assert.equal(h.asked(), 1);
    h.clock.advance(5001);
    await h.review('garbage-token', '10.0.0.1');
    assert.equal(h.asked(), 2);
    assert.deepEqual(h.outcomes, ['reviewed', 'refusal-cached', 'reviewed']);
  });

  it('does not remember an accepted token (the reviewers cache those themselves)', async () => {
    const h = harness();
    await h.review('good-token', '10.0.0.1', true);
    await h.review('good-token', '10.0.0.1', true);
    assert.equal(h.asked(), 2);
  });

  it('gives each client `burst` reviews, refills at perSecond, and says when to retry (ERR_RATE_LIMITED)', async () => {
    const h = harness({ burst: 3, perSecond: 0.5 });
    for (let i = 0; i < 3; i++) await h.review(`t${i}`, '10.0.0.1');
    await assert.rejects(h.review('t3', '10.0.0.1'), (e: unknown) => isMeshidError(e, 'ERR_RATE_LIMITED') && e instanceof ReviewRateLimitedError && e.retryAfterSeconds === 2);
    assert.equal(h.asked(), 3);
    // Another client has its own allowance.
    await h.review('t4', '10.0.0.2');
    assert.equal(h.asked(), 4);
    // Two seconds refill one review at 0.5/s.
    h.clock.advance(1000);
    await assert.rejects(h.review('t5', '10.0.0.1'), (e: unknown) => e instanceof ReviewRateLimitedError && e.retryAfterSeconds === 1);
    h.clock.advance(1000);
    await h.review('t6', '10.0.0.1');
    assert.equal(h.asked(), 5);
    await assert.rejects(h.review('t7', '10.0.0.1'), ReviewRateLimitedError);
  });

  it('charges nothing for screened or remembered refusals, and never limits meshid itself (no client)', async () => {
    const h = harness({ burst: 1, perSecond: 1, issuers: [ISSUER] });
    await h.review('refused', '10.0.0.1');
    for (let i = 0; i < 5; i++) {
      await h.review('refused', '10.0.0.1');
      await h.review('bad token', '10.0.0.1');
    }
    await assert.rejects(h.review('new', '10.0.0.1'), ReviewRateLimitedError);
    for (let i = 0; i < 5; i++) await h.review(`recheck-${i}`, undefined, true);
    assert.equal(h.asked(), 6);
  });

  it('refuses a rate that could never allow a review', () => {
    assert.throws(() => new TokenReviewGuard({ rate: { burst: 0, perSecond: 1 } }), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => new TokenReviewGuard({ rate: { burst: 1, perSecond: 0 } }), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
  });
});
