// An app built by buildApp with in-memory versions of meshid's own interfaces (DESIGN.md §4):
// for unit tests of the HTTP surface and for hostile-input properties.
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { ManualClock, MeshidError, createLogger, type Clock } from '../../src/core/index.ts';
import { createAuthority, issueLeaf, type Authority } from '../../src/pki/index.ts';
import { LoginService, SessionTokens, StaticSessionKeys, type Capabilities, type Identity, type KubeReviews } from '../../src/authn/index.ts';
import { KeyedIssuer, StaticPublicKeys, UserTokenValidator, type SigningKey } from '../../src/tokens/index.ts';
import { KubeConfig } from '@kubernetes/client-node';
import { buildApp, type UserTokenDeps } from '../../src/server/app.ts';
import type { DashboardDeps } from '../../src/server/graphql/context.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import type { Upstream } from '../../src/server/upstream.ts';

export const alice: Identity = { name: 'alice', groups: ['dev', 'system:authenticated'] };
export const carol: Identity = { name: 'carol', groups: ['qa'], uid: 'carol-uid', extra: { scopes: ['read', 'write'] } };
/**
 * What `meshid dashboard`'s local proxy adds: the browser's host, one of its own. The server
 * plants no session on a shared loopback host, which is what a bare inject() would be.
 */
export const DASHBOARD_PROXY = { 'x-forwarded-host': 'k7dq2test.localhost:50500' } as const;
export const caps: Capabilities = { 'pods/list': true, 'usertokens.meshid.io/create': false };

export class FakeReviews implements KubeReviews {
  async reviewToken(token: string): Promise<Identity> {
    if (token === 'good') return alice;
    if (token === 'carol') return carol;
    throw new MeshidError('ERR_LOGIN_FAILED', 'Kubernetes did not accept the token');
  }

  async capabilities(): Promise<Capabilities> {
    return caps;
  }
}

/** Who may issue user tokens in apps with `memoryUserTokens`: RBAC's answer, in memory. */
export const TOKEN_ISSUERS_GROUP = 'token-issuers';

/**
 * User tokens on a fresh RSA key (kid "1"), revocations in a set, and a SubjectAccessReview
 * stand-in that lets only group `token-issuers` create them.
 */
export function memoryUserTokens(clock: Clock): { deps: UserTokenDeps; signingKey: SigningKey; publicKey: KeyObject; revoked: Set<string> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { kid: '1', privateKey };
  const revoked = new Set<string>();
  const logins = new FakeReviews();
  const reviews: KubeReviews = {
    reviewToken: (token) => logins.reviewToken(token),
    capabilities: async (user) => ({ ...caps, 'usertokens.meshid.io/create': user.groups.includes(TOKEN_ISSUERS_GROUP) }),
  };
  const deps: UserTokenDeps = {
    validator: new UserTokenValidator([new StaticPublicKeys([{ kid: '1', key: publicKey }])], { isRevoked: (jti) => revoked.has(jti) }, clock),
    issuer: new KeyedIssuer(() => signingKey, clock),
    reviews,
    publicKeys: () => [{ kid: '1', key: publicKey }],
  };
  return { deps, signingKey, publicKey, revoked };
}

/**
 * The dashboard API's dependencies in memory: SubjectAccessReview answers from `reviews`,
 * user tokens from `memoryUserTokens`, events in a list, and a Kubernetes that does not
 * answer (nothing listens on port 1), so resolvers that need it report UNAVAILABLE.
 */
export function memoryDashboard(clock: Clock, userTokens: ReturnType<typeof memoryUserTokens>): { deps: DashboardDeps; events: unknown[] } {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'nowhere', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'meshid', token: 'server-token' }],
    contexts: [{ name: 'nowhere', cluster: 'nowhere', user: 'meshid' }],
    currentContext: 'nowhere',
  });
  const events: unknown[] = [];
  const deps: DashboardDeps = {
    kc,
    namespace: 'meshid-system',
    trustDomain: 'cluster.local',
    rootConfigMap: 'istio-ca-root-cert',
    reviews: userTokens.deps.reviews,
    events: { record: (event) => void events.push(event) },
    caStatus: async () => ({ mode: 'self-signed', rootFingerprint: 'AA:BB', notAfter: new Date(clock.now() + 86_400_000).toISOString(), trustBundle: [] }),
    userTokens: {
      issuer: userTokens.deps.issuer,
      keys: undefined,
      revocations: { list: () => [...userTokens.revoked], revoke: async (jtis) => void jtis.forEach((j) => userTokens.revoked.add(j)) },
    },
    clock,
    log: createLogger('test', 'silent'),
  };
  return { deps, events };
}

/** An Upstream for apps whose tests never reach Kubernetes; nothing listens on port 1. */
export function unusedUpstream(): Upstream {
  const agent = new Agent();
  return { url: new URL('https://127.0.0.1:1'), agent, tls: {}, authorization: () => 'Bearer server-token', close: () => agent.destroy() };
}

export interface TestApp {
  app: FastifyInstance;
  tokens: SessionTokens;
  clock: Clock;
  metrics: ServerMetrics;
  /** The cluster's client CA, as the fake ClientCaSource publishes it. */
  clientCa: Authority;
}

export async function testApp(
  options: { anonymousAuth?: boolean; ready?: () => boolean; upstream?: Upstream; clock?: Clock; userTokens?: UserTokenDeps; dashboard?: DashboardDeps } = {},
): Promise<TestApp> {
  // Certificates are made against the wall clock, so the test clock starts there.
  const clock = options.clock ?? new ManualClock(Date.now());
  const keys = new StaticSessionKeys();
  const tokens = new SessionTokens(keys, clock);
  const ca = await createAuthority('cluster-client-ca');
  const roots = { roots: async () => [new X509Certificate(ca.certPem)] };
  const metrics = new ServerMetrics();
  const app = buildApp({
    log: createLogger('test', 'silent'),
    tokens,
    login: new LoginService({ reviews: new FakeReviews(), clientCa: roots, tokens, keys, clock }),
    upstream: options.upstream ?? unusedUpstream(),
    metrics,
    anonymousAuth: options.anonymousAuth ?? false,
    bodyLimitBytes: 65536,
    ready: options.ready ?? (() => true),
    clock,
    ...(options.userTokens ? { userTokens: options.userTokens } : {}),
    ...(options.dashboard ? { dashboard: options.dashboard } : {}),
  });
  await app.ready();
  return { app, tokens, clock, metrics, clientCa: ca };
}

/** RFC 9457 problem details as meshid sends them. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
}

/** Asserts a problem+json answer with this status and code. */
export function assertProblem(res: { statusCode: number | undefined; headers: OutgoingHttpHeaders | IncomingHttpHeaders; body: string }, status: number, code: string): ProblemBody {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const problem = JSON.parse(res.body) as ProblemBody;
  assert.equal(problem.code, code);
  assert.equal(problem.status, status);
  assert.equal(problem.type, `https://meshid.io/problems/${code}`);
  return problem;
}

export interface LoginBody {
  user: { name: string; groups: string[]; uid?: string };
  capabilities: Capabilities;
  token: string;
  wrappedToken: string;
  expiresAt: string;
}

/** Logs in through POST /api/login with a bearer token FakeReviews knows. */
export async function login(app: FastifyInstance, token = 'good'): Promise<LoginBody> {
  const res = await app.inject({ method: 'POST', url: '/api/login', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<LoginBody>();
}

/** The session and CSRF cookies a handoff set, as a Cookie header, and the CSRF value. */
export function cookieHeader(res: LightMyRequestResponse): { cookie: string; csrf: string } {
  const session = res.cookies.find((c) => c.name === 'meshid_session');
  const csrf = res.cookies.find((c) => c.name === 'meshid_csrf');
  assert.ok(session && csrf);
  return { cookie: `meshid_session=${session.value}; meshid_csrf=${csrf.value}`, csrf: csrf.value };
}

// A local HTTPS server that plays the apiserver for the proxy's unit tests: it records
// every request and answers 201 (418 when the query asks).

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  distinct: NodeJS.Dict<string[]>;
  body: string;
}

export async function fakeApiServer(): Promise<{ server: Server; caPem: string; port: number; seen: Seen[] }> {
  const ca = await createAuthority('fake-apiserver-ca');
  const tls = await issueLeaf(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
  const seen: Seen[] = [];
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const record: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, distinct: req.headersDistinct, body: Buffer.concat(chunks).toString() };
      seen.push(record);
      // What a Service or Pod behind the apiserver's proxy may answer: a page that plants a cookie.
      if (req.url?.includes('/proxy/')) {
        res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': 'meshid_session=planted; Path=/' });
        res.end('<script>fetch("/api/graphql")</script>');
        return;
      }
      res.writeHead(req.url?.includes('status=418') ? 418 : 201, { 'content-type': 'application/json', 'x-from-upstream': 'yes' });
      res.end(JSON.stringify({ kind: 'Echo', method: record.method, url: record.url }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, caPem: ca.certPem, port: (server.address() as AddressInfo).port, seen };
}

export function upstreamAt(port: number, caPem: string, authorization: string | undefined): Upstream {
  const agent = new Agent({ ca: caPem, keepAlive: false });
  return { url: new URL(`https://127.0.0.1:${port}`), agent, tls: { ca: caPem }, authorization: () => authorization, close: () => agent.destroy() };
}
