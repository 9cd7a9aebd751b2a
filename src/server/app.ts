import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerFactory } from 'fastify';
import { z } from 'zod';
import { MeshidError, systemClock, type Clock, type Logger } from '../core/index.ts';
import { SESSION_TTL_MS, claimedExpiry, type LoginCredential, type LoginService, type SessionTokens } from '../authn/index.ts';
import { K8S_PREFIX, proxyRequest, upstreamPath } from './k8s-proxy.ts';
import type { ServerMetrics } from './metrics.ts';
import { sendHandoffProblem, sendProblem, writeProblem } from './problem.ts';
import { CSRF_COOKIE, FORWARDED_AUTH_HEADER, SESSION_COOKIE, refuseCrossOrigin, refuseSharedHost } from './request-auth.ts';
import { registerAuthentication, type RouteAuth } from './authentication.ts';
import type { Upstream } from './upstream.ts';
import { requireCapability } from './permissions.ts';
import { withinDeadline } from './deadline.ts';
import { registerGraphql } from './graphql/plugin.ts';
import { registerDashboard } from './dashboard-static.ts';
import type { DashboardDeps } from './graphql/context.ts';
import type { KeyObject } from 'node:crypto';
import { ANONYMOUS_USER, UNAUTHENTICATED_GROUP, issueUserToken, jwks, type Issuer, type UserTokenValidator } from '../tokens/index.ts';
import type { KubeReviews } from '../authn/index.ts';

export interface AppDeps {
  log: Logger;
  tokens: SessionTokens;
  login: LoginService;
  upstream: Upstream;
  metrics: ServerMetrics;
  anonymousAuth: boolean;
  bodyLimitBytes: number;
  /** True once the session key is loaded and the watches run. */
  ready(): boolean;
  /** Where the dashboard lives; the handoff redirects there. */
  dashboardPath?: string;
  clock?: Clock;
  /** User tokens: absent where the server only does kubeconfig login (unit tests). */
  userTokens?: UserTokenDeps;
  /** Deprecated: HTTPS client certificates from the configured CA are mesh-system:admin. */
  adminClientCerts?: boolean;
  /** The dashboard's GraphQL API; absent where a test needs only the HTTP routes. */
  dashboard?: DashboardDeps;
}

export interface UserTokenDeps {
  validator: UserTokenValidator;
  issuer: Issuer;
  /** SubjectAccessReview, to check `create usertokens.meshid.io` for the caller. */
  reviews: KubeReviews;
  /** Every key that validates user tokens, for the JWKS. */
  publicKeys(): { kid: string; key: KeyObject }[];
}

const CertificateLogin = z.object({ certificate: z.string().min(1).max(32 * 1024), challenge: z.string().min(1).max(1024), signature: z.string().min(1).max(4096) });
const Handoff = z.object({ wrappedToken: z.string().min(1).max(16 * 1024) });

/**
 * The server's HTTP surface. It does not listen: `startServer` attaches it to the HTTP and
 * HTTPS listeners, and tests call `app.inject()`.
 */
export function buildApp(deps: AppDeps, serverFactory?: FastifyServerFactory): FastifyInstance {
  const app = fastify({
    logger: false,
    bodyLimit: deps.bodyLimitBytes,
    ...(serverFactory ? { serverFactory } : {}),
  });
  const dashboard = deps.dashboardPath ?? '/';
  const clock = deps.clock ?? systemClock;
  const open = (auth: RouteAuth) => ({ config: { auth } });

  void app.register(fastifyCookie);
  // JSON only: an HTML form (urlencoded, multipart, text/plain) cannot send it across sites
  // without a CORS preflight, which meshid never grants.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(async (error, request, reply) => {
    // A body refused for its size is refused as soon as its headers arrive, and fastify then
    // closes the connection. A client still sending it would fail to write (EPIPE) and, where
    // the network delays the answer, never read it: read the rest and drop it first, bounded.
    if ((error as { statusCode?: unknown }).statusCode === 413 && !request.raw.complete) await drainBody(request.raw, BODY_DRAIN_MS);
    return sendProblem(reply, request, error, deps.log);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, request, new MeshidError('ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`), deps.log));
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.requests.observe(
      { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
  // Every route below is authenticated unless it says otherwise in its own options.
  registerAuthentication(app, deps);

  app.get('/healthz', open('public'), async () => ({ status: 'ok' }));
  app.get('/readyz', open('public'), async (_request, reply) => (deps.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'starting' })));
  // Counts and latencies by route, method, status and login type: no name, token or address.
  app.get('/metrics', open('public'), async (_request, reply) => reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()));

  const requireLogin = (): void => {
    if (deps.anonymousAuth) throw new MeshidError('ERR_AUTH_DISABLED', 'meshid runs with --anonymous-auth: there is nothing to log in to');
  };

  app.get('/api/login/challenge', open('login'), async () => {
    requireLogin();
    return deps.login.challenge();
  });

  app.post('/api/login', open('login'), async (request, reply) => {
    requireLogin();
    const body = (request.body ?? {}) as Record<string, unknown>;
    const wrapped = body['wrappedToken'] ?? body['wrapped-token'];
    if (wrapped !== undefined) {
      const parsed = Handoff.safeParse({ wrappedToken: wrapped });
      if (!parsed.success) throw new MeshidError('ERR_INVALID_ARGUMENT', 'wrappedToken must be a non-empty string of at most 16 KiB');
      return handoff(parsed.data.wrappedToken, request, reply);
    }
    const credential = loginCredential(request);
    try {
      const result = await withinDeadline(deps.login.login(credential, request.ip));
      deps.metrics.logins.inc({ type: credential.type, result: 'success' });
      deps.dashboard?.events.record({ reason: 'Login', user: result.user.name, message: `${result.user.name} logged in with a ${credential.type === 'bearer' ? 'kubeconfig token' : 'client certificate'}` });
      return {
        user: { name: result.user.name, groups: result.user.groups, ...(result.user.uid ? { uid: result.user.uid } : {}) },
        capabilities: result.capabilities,
        token: result.token,
        wrappedToken: result.wrappedToken,
        expiresAt: new Date(result.expiresAt).toISOString(),
      };
    } catch (error) {
      deps.metrics.logins.inc({ type: credential.type, result: 'failure' });
      throw error;
    }
  });

  app.get('/api/login', open('login'), async (request, reply) => {
    requireLogin();
    const wrapped = (request.query as Record<string, unknown>)['wrapped-token'];
    if (typeof wrapped !== 'string' || wrapped.length === 0) throw new MeshidError('ERR_INVALID_ARGUMENT', 'query parameter wrapped-token is required');
    try {
      return await handoff(wrapped, request, reply);
    } catch (error) {
      // The browser that followed the link gets a page, not JSON.
      return sendHandoffProblem(reply, request, error, deps.log);
    }
  });

  // Ends the caller's session on every replica (a watched denylist), then forgets the cookies.
  app.post('/api/logout', open('optional'), async (request, reply) => {
    const session = request.callerIfAny()?.session;
    if (session) await withinDeadline(deps.tokens.revoke(session));
    const secure = request.protocol === 'https';
    void reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure });
    void reply.clearCookie(CSRF_COOKIE, { path: '/', sameSite: 'strict', secure });
    return reply.code(204).send();
  });

  app.get('/api/whoami', async (request) => {
    const caller = request.caller();
    if (caller.session) {
      const { user, capabilities, expiresAt } = caller.session;
      return { name: user.name, groups: user.groups, ...(user.uid ? { uid: user.uid } : {}), ...(user.extra ? { extra: user.extra } : {}), capabilities, expiresAt: new Date(expiresAt).toISOString() };
    }
    const reviews = deps.userTokens?.reviews ?? deps.dashboard?.reviews;
    const capabilities = reviews ? await withinDeadline(reviews.capabilities(caller.user)) : {};
    return { name: caller.user.name, groups: caller.user.groups, capabilities, ...(caller.via === 'anonymous' ? { anonymous: true } : {}) };
  });

  if (deps.userTokens) registerUserTokenRoutes(app, deps.userTokens, deps.dashboard?.events);
  if (deps.dashboard) registerGraphql(app, deps.dashboard);
  registerDashboard(app);

  // The Kubernetes proxy streams bodies through untouched, so it gets no body parser.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scope.all(`${K8S_PREFIX}`, (request, reply) => proxy(request, reply));
    scope.all(`${K8S_PREFIX}/*`, (request, reply) => proxy(request, reply));
  });

  async function proxy(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const path = upstreamPath(request.raw.url ?? '');
    const caller = request.caller();
    void reply.hijack();
    try {
      proxyRequest(request.raw, reply.raw, path, caller.user, deps.upstream, (error) => {
        writeProblem(reply.raw, new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes is unavailable', { cause: error }), deps.log, request.method, request.url);
      });
    } catch (error) {
      // The reply is hijacked: fastify's error handler no longer applies.
      writeProblem(reply.raw, error, deps.log, request.method, request.url);
    }
  }

  async function handoff(wrapped: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // Login CSRF: a page of another site must not plant its own session in this browser.
    refuseCrossOrigin(request.headers);
    refuseSharedHost(request.headers);
    const token = await deps.tokens.unwrap(wrapped);
    const session = await deps.tokens.verify(token);
    const secure = request.protocol === 'https';
    const maxAge = Math.max(0, Math.floor(Math.min(SESSION_TTL_MS, session.expiresAt - clock.now()) / 1000));
    void reply.setCookie(SESSION_COOKIE, token, { path: '/', httpOnly: true, sameSite: 'strict', secure, maxAge });
    void reply.setCookie(CSRF_COOKIE, randomBytes(18).toString('base64url'), { path: '/', sameSite: 'strict', secure, maxAge });
    return reply.code(303).header('location', dashboard).header('cache-control', 'no-store').send();
  }

  return app;
}

/** Kuma's user-token API (`POST /tokens/user`) and a JWKS of the keys that validate them. */
function registerUserTokenRoutes(app: FastifyInstance, deps: UserTokenDeps, events: DashboardDeps['events'] | undefined): void {
  // A caller without credentials is mesh-system:anonymous, as in Kuma; RBAC then says no.
  app.post('/tokens/user', { config: { auth: 'optional' satisfies RouteAuth } }, async (request, reply) => {
    const user = request.callerIfAny()?.user ?? { name: ANONYMOUS_USER, groups: [UNAUTHENTICATED_GROUP] };
    const authorize = () => requireCapability(deps.reviews, user, 'issueUserToken');
    const audit = events ?? { record: () => undefined };
    const { token } = await issueUserToken({ issuer: deps.issuer, audit, authorize }, { user: user.name, via: 'POST /tokens/user' }, request.body);
    return reply.type('text/plain; charset=utf-8').send(token);
  });

  app.get('/.well-known/jwks.json', { config: { auth: 'public' satisfies RouteAuth } }, async (_request, reply) => reply.header('cache-control', 'max-age=60').send(jwks(deps.publicKeys())));
}

function loginCredential(request: FastifyRequest): LoginCredential {
  // An exec plugin's expirationTimestamp, which only the client sees; it can only shorten the session.
  const expiresAt = claimedExpiry(((request.body ?? {}) as Record<string, unknown>)['credentialExpiresAt']);
  for (const header of ['authorization', FORWARDED_AUTH_HEADER] as const) {
    const value = request.headers[header];
    if (typeof value === 'string') {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
      if (!match?.[1]) throw new MeshidError('ERR_INVALID_ARGUMENT', `${header} must be "Bearer <token>"`);
      return { type: 'bearer', token: match[1], expiresAt };
    }
  }
  const parsed = CertificateLogin.safeParse(request.body);
  if (!parsed.success) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'send a Bearer token, or a JSON body {certificate, challenge, signature} (get a challenge from GET /api/login/challenge)');
  }
  return { type: 'certificate', ...parsed.data, expiresAt };
}

/** How long a refused body is read before the answer goes out anyway (and the connection closes on the sender). */
const BODY_DRAIN_MS = 5_000;

/** Reads and drops the rest of a request body until it ends, the connection goes, or `ms` pass. */
function drainBody(req: IncomingMessage, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      req.off('end', done).off('close', done).off('error', done);
      resolve();
    }
    req.on('end', done).on('close', done).on('error', done);
    req.resume();
  });
}
