import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MeshidError, isMeshidError } from '../core/index.ts';
import type { Logger } from '../core/index.ts';
import type { SessionTokens } from '../authn/index.ts';
import type { UserTokenValidator } from '../tokens/index.ts';
import type { Upstream } from './upstream.ts';
import { proxyUpgrade, upstreamPath } from './k8s-proxy.ts';
import { endSocketWithProblem, sendProblem } from './problem.ts';
import { RequestAuthenticator, refuseImpersonationHeaders, type AuthRequest, type Caller } from './request-auth.ts';

/**
 * What a route asks of its caller, set in the route's own options (`config.auth`); a route
 * that says nothing is authenticated, so a new route cannot forget it.
 * - `public`: carries and makes no credential (health, metrics, keys, the dashboard's files);
 * - `login`: takes a credential to check but has no caller yet (login, the handoff);
 * - `optional`: a caller if there is one, nobody otherwise (Kuma's `/tokens/user`, logout);
 * - `required` (the default): a caller, or 401.
 */
export type RouteAuth = 'public' | 'login' | 'optional' | 'required';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** The authenticated caller; throws on a route that has none. */
    caller(): Caller;
    /** The caller of an `optional` route, if they sent credentials. */
    callerIfAny(): Caller | undefined;
  }
  interface FastifyInstance {
    /** Connection upgrades (exec, attach, port-forward) bypass routing: authenticated and proxied here. */
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  }
}

const callers = new WeakMap<FastifyRequest, Caller>();

/** Loopback clients: the playground's own processes, a port-forward into the pod. */
function fromLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || (isIP(v4) === 4 && v4.startsWith('127.'));
}

/**
 * Credentials never cross a network in clear text: the plain-HTTP listener (5681) answers
 * routes that take or use one only to clients on the same host (a port-forward lands on the
 * pod's loopback). Everyone else uses HTTPS (5682).
 */
function requireTransport(socket: AuthRequest['socket']): void {
  if (socket instanceof TLSSocket || fromLoopback(socket?.remoteAddress)) return;
  throw new MeshidError('ERR_HTTPS_REQUIRED', 'credentials are accepted only over HTTPS here', { hint: 'Use the HTTPS port (5682), e.g. through `meshid dashboard` or `--url https://…:5682`.' });
}

/**
 * The one authentication path: a fastify hook for every route, and the upgrade handler for
 * upgrades, both deciding with the same authenticator and the same rules.
 */
export interface AuthenticationDeps {
  tokens: SessionTokens;
  anonymousAuth: boolean;
  userTokens?: { validator: UserTokenValidator } | undefined;
  adminClientCerts?: boolean | undefined;
  upstream: Upstream;
  log: Logger;
}

export function registerAuthentication(app: FastifyInstance, deps: AuthenticationDeps): void {
  const authenticator = new RequestAuthenticator(deps.tokens, deps.anonymousAuth, deps.userTokens?.validator, deps.adminClientCerts ?? false);
  const check = async (request: AuthRequest, auth: RouteAuth): Promise<Caller | undefined> => {
    if (auth === 'public') return undefined;
    requireTransport(request.socket);
    if (auth === 'login') return undefined;
    refuseImpersonationHeaders(request.headers);
    try {
      return await authenticator.authenticate(request);
    } catch (error) {
      if (auth === 'optional' && isMeshidError(error, 'ERR_UNAUTHENTICATED')) return undefined;
      throw error;
    }
  };

  app.decorateRequest('caller', function (this: FastifyRequest): Caller {
    const caller = callers.get(this);
    if (!caller) throw new MeshidError('ERR_UNAUTHENTICATED', 'no session: run `meshid login`, or send the ID token as a Bearer token');
    return caller;
  });
  app.decorateRequest('callerIfAny', function (this: FastifyRequest): Caller | undefined {
    return callers.get(this);
  });
  app.addHook('onRequest', async (request, reply) => {
    // Unmatched paths go on to the 404 handler, which needs no caller.
    if (request.routeOptions.url === undefined) return;
    try {
      const caller = await check({ headers: request.headers, method: request.method, socket: request.raw.socket }, request.routeOptions.config.auth ?? 'required');
      if (caller) callers.set(request, caller);
    } catch (error) {
      // Answered here, as problem+json: a plugin's own error handler (GraphQL's) must not reword a refusal.
      return sendProblem(reply, request, error, deps.log);
    }
  });

  app.decorate('handleUpgrade', (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void (async () => {
      let caller: Caller | undefined;
      let path: string;
      try {
        path = upstreamPath(req.url ?? '');
        caller = await check({ headers: req.headers, method: req.method ?? 'GET', socket: req.socket }, 'required');
        if (!caller) throw new MeshidError('ERR_UNAUTHENTICATED', 'an upgrade needs a caller');
      } catch (error) {
        endSocketWithProblem(socket, error, deps.log, req.url);
        return;
      }
      try {
        proxyUpgrade(req, socket, head, path, caller.user, deps.upstream, (error) =>
          endSocketWithProblem(socket, new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes is unavailable', { cause: error }), deps.log, req.url),
        );
      } catch (error) {
        endSocketWithProblem(socket, error, deps.log, req.url);
      }
    })();
  });
}
