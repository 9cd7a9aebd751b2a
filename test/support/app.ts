// An app built by buildApp with in-memory versions of meshid's own interfaces (DESIGN.md §4):
// for unit tests of the HTTP surface and for hostile-input properties.
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Agent } from 'node:https';
import type { FastifyInstance } from 'fastify';
import { ManualClock, MeshidError, createLogger, type Clock } from '../../src/core/index.ts';
import { createAuthority, type Authority } from '../../src/pki/index.ts';
import { LoginService, SessionTokens, StaticSessionKeys, type Capabilities, type Identity, type KubeReviews } from '../../src/authn/index.ts';
import { KeyedIssuer, StaticPublicKeys, UserTokenValidator, type SigningKey } from '../../src/tokens/index.ts';
import { buildApp, type UserTokenDeps } from '../../src/server/app.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import type { Upstream } from '../../src/server/upstream.ts';

export const alice: Identity = { name: 'alice', groups: ['dev', 'system:authenticated'] };
export const carol: Identity = { name: 'carol', groups: ['qa'], uid: 'carol-uid', extra: { scopes: ['read', 'write'] } };
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

/** An Upstream for apps whose tests never reach Kubernetes; nothing listens on port 1. */
export function unusedUpstream(): Upstream {
  const agent = new Agent();
  return { url: new URL('https://127.0.0.1:1'), agent, authorization: () => 'Bearer server-token', close: () => agent.destroy() };
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
  options: { anonymousAuth?: boolean; ready?: () => boolean; upstream?: Upstream; clock?: Clock; userTokens?: UserTokenDeps } = {},
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
  });
  await app.ready();
  return { app, tokens, clock, metrics, clientCa: ca };
}

