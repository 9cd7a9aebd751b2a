// Hostile input on Kuma's POST /tokens/user: random bodies, content types and credentials.
// A token comes back exactly when an allowed caller sends a well-formed request, and it then
// carries what was asked, under the mesh-system: prefix, and nothing else; every other request is a 4xx problem with a
// stable code, never a 5xx and never a token.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/core/index.ts';
import { parseDuration } from '../../src/tokens/index.ts';
import { TOKEN_ISSUERS_GROUP, alice, memoryUserTokens, testApp, type TestApp } from '../support/app.ts';
import type { UserTokenDeps } from '../../src/server/app.ts';
import { jwtLike, settings, trickyName } from './arbitraries.ts';

/** The stable problem codes /tokens/user may answer, by status. */
const CODES: Record<number, string[]> = {
  400: ['invalid-request', 'token-name-required', 'token-valid-for-invalid', 'token-valid-for-too-long', 'token-identity-reserved'],
  401: ['token-invalid', 'token-expired', 'unauthenticated'],
  403: ['forbidden', 'csrf-token-required'],
  413: ['payload-too-large'],
  415: ['unsupported-media-type'],
};

/** The default `userTokens.maxValidFor`: a year. */
const MAX_VALID_FOR_MS = 8760 * 3_600_000;

/** Who a token is to Kubernetes, per the README: values under mesh-system: are kept, the rest get it. */
const kube = (value: string): string => (value.startsWith('mesh-system:') ? value : `mesh-system:${value}`);

/** What the route promises to issue for, written from its documentation rather than its code. */
function wellFormed(body: unknown): { name: string; groups: string[] } | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { name, groups = [], validFor } = body as Record<string, unknown>;
  if (typeof name !== 'string' || name.trim() === '' || name.length > 253) return undefined;
  if (!Array.isArray(groups) || groups.length > 64 || !groups.every((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= 253)) return undefined;
  if (typeof validFor !== 'string') return undefined;
  try {
    const ms = parseDuration(validFor);
    if (!(ms > 0) || ms > MAX_VALID_FOR_MS) return undefined;
  } catch {
    return undefined;
  }
  // Kubernetes reserves system:, and trims spaces and tabs around header values; HTTP carries no control characters.
  const reserved = (v: string): boolean => v.trim().toLowerCase().startsWith('system:');
  const altered = (v: string): boolean => /^[ \t]|[ \t]$/.test(v) || [...v].some((c) => c < ' ' || c === '\x7f');
  if ([name, ...groups].some((v) => reserved(v) || altered(v))) return undefined;
  return { name, groups };
}

const duration = fc.oneof(
  fc.constantFrom('24h', '1h30m', '90s', '500ms', '0s', '0', '-1h', '1y', 'soon', '', ' 1h', '1e3h', '99999999999999999999h', '1.5h', '8760h', '8761h', '876000h'),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.constant(null),
);

const body = fc.oneof(
  fc.record({ name: fc.oneof(trickyName, fc.jsonValue({ maxDepth: 1 })), groups: fc.oneof(fc.array(trickyName, { maxLength: 5 }), fc.array(fc.string({ maxLength: 4 }), { minLength: 60, maxLength: 70 }), fc.jsonValue({ maxDepth: 1 })), validFor: duration }, { requiredKeys: [] }),
  // Mostly well-formed, so that the issuing side of the property is exercised too.
  { weight: 3, arbitrary: fc.record({ name: fc.string({ minLength: 1, maxLength: 20 }), groups: fc.array(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 3 }), validFor: fc.constantFrom('1h', '10m', '2h30m') }) },
  fc.jsonValue({ maxDepth: 3 }),
);

type Credential = 'none' | 'issuer-session' | 'issuer-user-token' | 'plain-session' | 'garbage' | 'cookie-without-csrf';

describe('hostile input on POST /tokens/user (fast-check, seeded)', () => {
  const clock = new ManualClock(Date.now());
  const userTokens = memoryUserTokens(clock);
  const { reviews } = userTokens.deps;
  // A user token's group token-issuers is mesh-system:token-issuers to RBAC, so the admin of
  // this fake cluster has bound the right to issue to that group as well.
  const issuers = new Set([TOKEN_ISSUERS_GROUP, kube(TOKEN_ISSUERS_GROUP)]);
  const deps: UserTokenDeps = {
    ...userTokens.deps,
    reviews: { reviewToken: (token) => reviews.reviewToken(token), capabilities: async (user) => ({ ...(await reviews.capabilities(user)), 'usertokens.meshid.io/create': user.groups.some((g) => issuers.has(g)) }) },
  };
  let t: TestApp;
  const headers: Partial<Record<Credential, Record<string, string>>> = {};
  before(async () => {
    t = await testApp({ clock, userTokens: deps });
    const issuer = (await t.tokens.issue({ name: 'ops', groups: [TOKEN_ISSUERS_GROUP] }, {})).token;
    headers['issuer-session'] = { authorization: `Bearer ${issuer}` };
    headers['issuer-user-token'] = { 'x-authorization': `Bearer ${userTokens.deps.issuer.issue({ name: 'robot', groups: [TOKEN_ISSUERS_GROUP], validForMs: 3_600_000 })}` };
    headers['plain-session'] = { authorization: `Bearer ${(await t.tokens.issue(alice, {})).token}` };
    headers['cookie-without-csrf'] = { cookie: `meshid_session=${issuer}` };
  });
  after(async () => t.app.close());

  it('issues exactly for an allowed caller and a well-formed body, and answers everything else with a 4xx code (2,500 cases)', async () => {
    const credential = fc.constantFrom<Credential>('none', 'issuer-session', 'issuer-user-token', 'plain-session', 'garbage', 'cookie-without-csrf');
    const contentType = fc.oneof({ weight: 4, arbitrary: fc.constant('application/json') }, fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/xml'));
    const raw = fc.oneof({ weight: 4, arbitrary: body.map((b) => JSON.stringify(b)) }, fc.string({ maxLength: 200 }));
    await fc.assert(
      fc.asyncProperty(credential, jwtLike, contentType, raw, async (who, garbage, type, payload) => {
        const credentialHeaders = who === 'garbage' ? { authorization: `Bearer ${garbage}` } : (headers[who] ?? {});
        const res = await t.app.inject({ method: 'POST', url: '/tokens/user', payload, headers: { ...credentialHeaders, 'content-type': type } });
        const what = `${res.statusCode} for ${who} ${type} ${payload.slice(0, 120)}: ${res.body.slice(0, 200)}`;
        let parsed: unknown;
        try {
          parsed = type.startsWith('application/json') ? JSON.parse(payload) : undefined;
        } catch {
          parsed = undefined;
        }
        const asked = wellFormed(parsed);
        const allowed = who === 'issuer-session' || who === 'issuer-user-token';
        if (allowed && asked) {
          assert.equal(res.statusCode, 200, what);
          const user = userTokens.deps.validator.validate(res.body);
          assert.equal(user.name, kube(asked.name));
          assert.deepEqual(user.groups, [...new Set(asked.groups.map(kube))].filter((g) => g !== 'mesh-system:authenticated').concat('mesh-system:authenticated'));
          return;
        }
        assert.ok(CODES[res.statusCode] !== undefined, what);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/, what);
        assert.ok(CODES[res.statusCode]?.includes((JSON.parse(res.body) as { code: string }).code), what);
        assert.ok(!/eyJ[\w-]+\.eyJ/.test(res.body), `a token leaked: ${what}`);
      }),
      settings(2500),
    );
  });
});
