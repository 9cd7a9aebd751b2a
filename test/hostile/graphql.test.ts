// Hostile GraphQL against /api/graphql: random, deeply nested, aliased, cyclic and oversized
// documents and variables, over POST and GET, from callers with and without rights. Every
// answer is a GraphQL result (200 with data, 400 without, 503 only when Kubernetes is down)
// or a problem from the authentication in front; depth and cost limits hold; no stack trace
// or internal error leaks; and no field a caller may not see ever carries data.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/core/index.ts';
import { MAX_QUERY_BYTES, MAX_QUERY_COST, MAX_QUERY_DEPTH } from '../../src/server/graphql/plugin.ts';
import { TOKEN_ISSUERS_GROUP, alice, memoryDashboard, memoryUserTokens, testApp, type TestApp } from '../support/app.ts';
import { jwtLike, settings } from './arbitraries.ts';

type Caller = 'alice' | 'ops';
type Op = 'query' | 'mutation';

/** Top-level fields, and who may not see any data from them (meshid.io RBAC says no, or the input is refused). */
const FIELDS: { op: Op; field: string; text: string; hiddenFrom: Caller[] }[] = [
  { op: 'query', field: 'me', text: 'me { name groups uid anonymous expiresAt capabilities { key allowed } }', hiddenFrom: [] },
  { op: 'query', field: 'namespaces', text: 'namespaces { name }', hiddenFrom: [] },
  { op: 'query', field: 'workloads', text: 'workloads(namespace: "kube-system") { namespace name spiffeId }', hiddenFrom: [] },
  { op: 'query', field: 'identities', text: 'identities { spiffeId serial }', hiddenFrom: [] },
  { op: 'query', field: 'securityEvents', text: 'securityEvents(limit: 1000000) { reason user message }', hiddenFrom: [] },
  { op: 'query', field: 'certificateAuthority', text: 'certificateAuthority { mode rootFingerprint trustBundle { pem } }', hiddenFrom: ['alice', 'ops'] },
  { op: 'query', field: 'signingKeys', text: 'signingKeys { serial active }', hiddenFrom: ['alice', 'ops'] },
  { op: 'query', field: 'revokedTokens', text: 'revokedTokens', hiddenFrom: ['alice', 'ops'] },
  { op: 'query', field: 'registries', text: 'registries { name servers { server username } }', hiddenFrom: ['alice', 'ops'] },
  { op: 'mutation', field: 'generateUserToken', text: 'generateUserToken(name: "eve", groups: ["dev"], validFor: "1h") { id token }', hiddenFrom: ['alice'] },
  { op: 'mutation', field: 'generateUserToken', text: 'generateUserToken(name: "eve", groups: [" system:masters"], validFor: "1h") { token }', hiddenFrom: ['alice', 'ops'] },
  { op: 'mutation', field: 'revokeToken', text: 'revokeToken(id: "x") { id revokedTokens }', hiddenFrom: ['alice', 'ops'] },
  { op: 'mutation', field: 'rotateSigningKey', text: 'rotateSigningKey { serial }', hiddenFrom: ['alice', 'ops'] },
  { op: 'mutation', field: 'rotateCA', text: 'rotateCA { mode }', hiddenFrom: ['alice', 'ops'] },
  { op: 'mutation', field: 'registryAdd', text: 'registryAdd(name: "r", server: "s.example", username: "u", password: "p") { name }', hiddenFrom: ['alice', 'ops'] },
  { op: 'mutation', field: 'registryRemove', text: 'registryRemove(name: "r")', hiddenFrom: ['alice', 'ops'] },
  { op: 'mutation', field: 'recoverPlan', text: 'recoverPlan { steps { step actions { name } } }', hiddenFrom: ['alice', 'ops'] },
];
const CODES = new Set(['GRAPHQL_VALIDATION_FAILED', 'FORBIDDEN', 'UNAUTHENTICATED', 'UNAVAILABLE', 'NOT_FOUND', 'BAD_USER_INPUT']);

interface Case {
  method: 'GET' | 'POST';
  body: unknown;
  /** What the case knows of itself, for the checks beyond the common ones. */
  hidden: string[];
  overLimit?: boolean;
  withinLimits?: boolean;
  mutation?: boolean;
}

const alias = fc.stringMatching(/^[a-z][A-Za-z0-9_]{0,6}$/);

/** Operations built from the schema's own fields, aliased, sometimes in the wrong operation type. */
const structured = (caller: Caller) =>
  fc
    .constantFrom<Op>('query', 'mutation')
    .chain((op) => {
      const field = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...FIELDS.filter((f) => f.op === op)) }, fc.constantFrom(...FIELDS));
      return fc.tuple(fc.constant(op), fc.uniqueArray(fc.tuple(alias, field), { minLength: 1, maxLength: 5, selector: ([a]) => a }));
    })
    .map(([op, items]): Case => ({
    method: 'POST',
    body: { query: `${op} { ${items.map(([a, f]) => `${a}: ${f.text}`).join(' ')} }` },
    hidden: items.filter(([, f]) => f.hiddenFrom.includes(caller)).map(([a]) => a),
    mutation: op === 'mutation',
  }));

/** The same cheap field under many aliases: each costs 2 (me and name). */
const aliasBomb = fc.integer({ min: 1, max: 400 }).map((n): Case => {
  const cost = 2 * n;
  return { method: 'POST', body: { query: `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { name }`).join(' ')} }` }, hidden: [], overLimit: cost > MAX_QUERY_COST, withinLimits: cost <= MAX_QUERY_COST };
});

/** Introspection that nests as deep as asked: the schema's own types have no cycle, introspection does. */
const deepIntrospection = fc.integer({ min: 0, max: 30 }).map((n): Case => {
  // __schema, types, fields, type, n times ofType, name.
  const depth = 4 + n + 1;
  return { method: 'POST', body: { query: `{ __schema { types { fields { type ${'{ ofType '.repeat(n)}{ name }${' }'.repeat(n)} } } } }` }, hidden: [], overLimit: depth > MAX_QUERY_DEPTH, withinLimits: depth <= MAX_QUERY_DEPTH };
});

const tricks = fc.constantFrom<Case>(
  { method: 'POST', body: { query: 'query { ...A } fragment A on Query { me { name } ...B } fragment B on Query { ...A }' }, hidden: [], overLimit: true },
  { method: 'POST', body: { query: 'query A { me { name } } query B { signingKeys { serial } }' }, hidden: ['signingKeys'], overLimit: true },
  { method: 'POST', body: { query: 'subscription { me { name } }' }, hidden: [], overLimit: true },
  { method: 'POST', body: [{ query: '{ me { name } }' }, { query: '{ signingKeys { serial } }' }], hidden: ['signingKeys'] },
  { method: 'POST', body: { query: `{ me { name ${'__typename '.repeat(3000)} } }` }, hidden: [], overLimit: true },
  { method: 'POST', body: { query: `{ me { name } } ${'#'.repeat(MAX_QUERY_BYTES)}` }, hidden: [], overLimit: true },
  { method: 'GET', body: { query: 'mutation { rotateSigningKey { serial } }' }, hidden: ['rotateSigningKey'], mutation: true },
  { method: 'GET', body: { query: 'mutation { generateUserToken(name: "eve", validFor: "1h") { token } }' }, hidden: ['generateUserToken'], mutation: true },
  { method: 'GET', body: { query: '{ me { name } }' }, hidden: [] },
);

const withVariables = fc
  .tuple(fc.jsonValue({ maxDepth: 2 }), fc.option(fc.string({ maxLength: 10 }), { nil: undefined }))
  .map(([variables, operationName]): Case => ({
    method: 'POST',
    body: { query: 'query Q($ns: String, $skip: Boolean!, $n: Int) { workloads(namespace: $ns) @skip(if: $skip) { name } securityEvents(limit: $n) { reason } me { name } }', variables, ...(operationName !== undefined ? { operationName } : {}) },
    hidden: [],
  }));

const junk = fc
  .oneof(
    fc.string({ maxLength: 300 }),
    fc.array(fc.constantFrom('{', '}', '(', ')', '...', '@', '$', ':', 'me', 'name', 'query', 'mutation', 'fragment', 'on', '"', '#', '\n', ',', '[', ']', '__schema', '0'), { maxLength: 60 }).map((t) => t.join(' ')),
  )
  .map((query): Case => ({ method: 'POST', body: { query }, hidden: [] }));

// Bodies that are not a GraphQL request object at all, or one with stray members.
const anyBody = fc
  .oneof(
    fc.jsonValue({ maxDepth: 3 }).filter((b) => typeof b !== 'object' || b === null || Array.isArray(b)),
    fc.tuple(fc.string({ maxLength: 60 }), fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })).map(([query, extra]) => ({ ...extra, query })),
  )
  .map((body): Case => ({ method: 'POST', body, hidden: [] }));

describe('hostile GraphQL on /api/graphql (fast-check, seeded)', () => {
  const clock = new ManualClock(Date.now());
  const userTokens = memoryUserTokens(clock);
  let t: TestApp;
  const sessions: Record<Caller, string> = { alice: '', ops: '' };
  before(async () => {
    t = await testApp({ clock, userTokens: userTokens.deps, dashboard: memoryDashboard(clock, userTokens).deps });
    sessions.alice = (await t.tokens.issue(alice, {})).token;
    sessions.ops = (await t.tokens.issue({ name: 'ops', groups: [TOKEN_ISSUERS_GROUP] }, {})).token;
  });
  after(async () => t.app.close());

  it('answers with GraphQL results or auth problems, enforces depth and cost, leaks no stack and no hidden data (1,500 cases)', async () => {
    const credential = fc.oneof({ weight: 8, arbitrary: fc.constantFrom<Caller>('alice', 'ops') }, jwtLike.map((j) => ({ garbage: j })), fc.constant('none' as const));
    const request = (caller: Caller) => fc.oneof({ weight: 4, arbitrary: structured(caller) }, { weight: 2, arbitrary: aliasBomb }, { weight: 2, arbitrary: deepIntrospection }, tricks, { weight: 2, arbitrary: withVariables }, junk, anyBody);
    const input = credential.chain((who) => fc.tuple(fc.constant(who), request(typeof who === 'string' && who !== 'none' ? who : 'alice')));

    await fc.assert(
      fc.asyncProperty(input, async ([who, c]) => {
        const authorization = who === 'none' ? undefined : typeof who === 'string' ? `Bearer ${sessions[who]}` : `Bearer ${who.garbage}`;
        const headers = authorization ? { authorization } : {};
        const res =
          c.method === 'GET'
            ? await t.app.inject({ method: 'GET', url: `/api/graphql?query=${encodeURIComponent((c.body as { query: string }).query)}`, headers })
            : await t.app.inject({ method: 'POST', url: '/api/graphql', headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(c.body) });
        const what = `${res.statusCode} for ${JSON.stringify(who).slice(0, 40)} ${c.method} ${JSON.stringify(c.body).slice(0, 200)}: ${res.body.slice(0, 300)}`;

        assert.ok(!/"stack"|"exception"|\n\s+at [\w.<]/.test(res.body), `a stack trace leaked: ${what}`);
        if (String(res.headers['content-type']).startsWith('application/problem+json')) {
          // Refused in front of GraphQL: no or a bad credential, or too large to parse.
          assert.ok([401, 413].includes(res.statusCode), what);
          return;
        }
        assert.ok([200, 400, 405, 413, 503].includes(res.statusCode), what);
        if (res.statusCode === 405) {
          assert.ok(c.method === 'GET' && c.mutation, `405 for something other than a mutation over GET: ${what}`);
          return;
        }
        const body = JSON.parse(res.body) as { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] } | unknown[];
        const results = Array.isArray(body) ? (body as typeof body[]) : [body];
        for (const result of results as { data?: Record<string, unknown> | null; errors?: { extensions?: { code?: string } }[] }[]) {
          for (const error of result.errors ?? []) assert.ok(CODES.has(error.extensions?.code ?? ''), `error code ${String(error.extensions?.code)}: ${what}`);
          for (const hidden of c.hidden) assert.equal(result.data?.[hidden] ?? null, null, `hidden field ${hidden} carried data: ${what}`);
          const me = result.data?.['me'] as { name?: string } | null | undefined;
          if (me?.name !== undefined) assert.equal(me.name, who === 'ops' ? 'ops' : 'alice', what);
        }
        // Executed: a result with data, which a refused non-null field may null out entirely.
        if (res.statusCode === 200) assert.ok(!Array.isArray(body) && 'data' in (body as object), `200 that is not a result: ${what}`);
        if (res.statusCode === 400 || res.statusCode === 413 || res.statusCode === 503) assert.ok(Array.isArray(body) || !(body as { data?: unknown }).data, `${res.statusCode} with data: ${what}`);
        if (c.overLimit) assert.ok(res.statusCode >= 400, `a document over the limits ran: ${what}`);
        if (c.withinLimits) assert.equal(res.statusCode, 200, `a document within the limits was refused: ${what}`);
        if (c.method === 'GET' && c.mutation) assert.ok(res.statusCode >= 400, `a mutation ran over GET: ${what}`);
      }),
      settings(1500),
    );
  });
});
