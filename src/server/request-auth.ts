import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { fastifyCookie } from '@fastify/cookie';
import { MeshidError } from '../core/index.ts';
import type { Identity, Session, SessionTokens } from '../authn/index.ts';
import { ADMIN_GROUP, ADMIN_USER, AUTHENTICATED_GROUP, type UserTokenValidator } from '../tokens/index.ts';

export const SESSION_COOKIE = 'meshid_session';
export const CSRF_COOKIE = 'meshid_csrf';
export const CSRF_HEADER = 'x-csrf-token';
/** The kube-apiserver service proxy strips Authorization, so the CLI sends this instead. */
export const FORWARDED_AUTH_HEADER = 'x-authorization';
/**
 * The browser-facing host of `meshid dashboard`'s local proxy, which sets it. Only compared
 * with Origin: a page cannot add it to a cross-origin request without a CORS preflight,
 * which meshid never grants, so it cannot be used to pass the origin check.
 */
export const FORWARDED_HOST_HEADER = 'x-forwarded-host';

/**
 * Who a caller without credentials is in anonymous mode: Kubernetes' own anonymous user, so
 * RBAC decides what the mode exposes, never meshid's account.
 */
export const ANONYMOUS_IDENTITY: Identity = Object.freeze({ name: 'system:anonymous', groups: Object.freeze(['system:unauthenticated']) as string[] });

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** How a caller proved who they are. Cookies and client certificates are sent by a browser by itself. */
export type CallerVia = 'bearer' | 'cookie' | 'anonymous' | 'user-token' | 'admin-client-certificate';

export interface Caller {
  /** Who Kubernetes sees: every call goes out impersonating this identity. */
  user: Identity;
  session: Session | undefined;
  via: CallerVia;
}

/** What authentication reads of a request; fastify requests and raw upgrade requests both have it. */
export interface AuthRequest {
  headers: IncomingHttpHeaders;
  method: string;
  socket: Socket | undefined;
}

/** User tokens are RS256 (Kuma's format); session tokens are HS256. The header tells them apart. */
function isUserToken(token: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg?: unknown };
    return header.alg === 'RS256';
  } catch {
    return false;
  }
}

/**
 * Refuses client-sent Impersonate-* headers, whatever their case (Node lower-cases names),
 * and Impersonate_* too: proxies and frameworks that treat _ as - would turn them into one.
 */
export function refuseImpersonationHeaders(headers: IncomingHttpHeaders): void {
  for (const name of Object.keys(headers)) {
    if (name.startsWith('impersonate-') || name.startsWith('impersonate_')) {
      throw new MeshidError('ERR_IMPERSONATION_FORBIDDEN', `header ${name} is not accepted: meshid sets impersonation itself`);
    }
  }
}

function bearer(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const single = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/**
 * A credential the browser attaches by itself (a cookie, a TLS client certificate) must not
 * act for a page of another origin. Browsers say where a request comes from: Sec-Fetch-Site
 * (`same-site` includes other ports of the same host, so only `same-origin` and `none`, a
 * typed address, pass) and Origin, which must name the host the browser addressed. Requests
 * with neither come from programs, not pages, and have no ambient credential to abuse.
 */
export function refuseCrossOrigin(headers: IncomingHttpHeaders): void {
  const site = single(headers['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new MeshidError('ERR_CROSS_ORIGIN', `a ${site} request may not use the browser's meshid session or client certificate`);
  }
  const origin = single(headers.origin);
  if (origin === undefined) return;
  const host = browserHost(headers);
  let originHost: string | undefined;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = undefined;
  }
  if (!originHost || !host || originHost.toLowerCase() !== host.toLowerCase()) {
    throw new MeshidError('ERR_CROSS_ORIGIN', `origin ${origin} may not use the browser's meshid session or client certificate`);
  }
}

/** The host name the browser addressed: the local proxy's own when it forwards, else Host. */
function browserHost(headers: IncomingHttpHeaders): string | undefined {
  return single(headers[FORWARDED_HOST_HEADER]) ?? headers.host;
}

/**
 * Cookies are kept per host name, not per port: a session planted for 127.0.0.1 or
 * localhost would be sent to every other program listening there. Sessions go only to a
 * host of their own (`meshid dashboard` serves one, `<random>.localhost`) or a real name.
 */
export function refuseSharedHost(headers: IncomingHttpHeaders): void {
  const host = browserHost(headers);
  let name: string;
  try {
    name = new URL(`http://${host ?? ''}`).hostname.toLowerCase();
  } catch {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'the Host header is not a host name');
  }
  const bare = name.replace(/^\[|\]$/g, '');
  const shared = name === 'localhost' || bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'));
  if (shared) {
    throw new MeshidError('ERR_SHARED_ORIGIN', `a browser session is not planted on ${name}: every other program on this machine's ports would receive it`, {
      hint: 'Open the dashboard with `meshid dashboard`: it serves it on a host name of its own.',
    });
  }
}

/**
 * Who is calling: a user token or session token as Bearer (or X-Authorization), the session
 * cookie, a deprecated admin client certificate, or, in anonymous mode, Kubernetes' anonymous
 * user. The credentials a browser sends by itself are refused for other origins, and
 * cookie-authenticated unsafe methods must echo the CSRF cookie in X-CSRF-Token.
 */
export class RequestAuthenticator {
  constructor(
    private readonly tokens: SessionTokens,
    private readonly anonymous: boolean,
    private readonly userTokens?: UserTokenValidator,
    /** Deprecated admin client certificates: the HTTPS listener verified them against their CA. */
    private readonly adminClientCerts = false,
  ) {}

  async authenticate(request: AuthRequest): Promise<Caller> {
    const { headers } = request;
    if (this.anonymous) return { user: ANONYMOUS_IDENTITY, session: undefined, via: 'anonymous' };
    const token = bearer(headers.authorization) ?? bearer(headers[FORWARDED_AUTH_HEADER]);
    if (token && this.userTokens && isUserToken(token)) {
      const user = this.userTokens.validate(token);
      return { user: { name: user.name, groups: user.groups }, session: undefined, via: 'user-token' };
    }
    if (token) {
      const session = await this.tokens.verify(token);
      return { user: session.user, session, via: 'bearer' };
    }
    const cookies = fastifyCookie.parse(headers.cookie ?? '');
    const cookie = cookies[SESSION_COOKIE];
    if (cookie) {
      refuseCrossOrigin(headers);
      const session = await this.tokens.verify(cookie);
      if (!SAFE_METHODS.has(request.method.toUpperCase())) {
        const sent = headers[CSRF_HEADER];
        const expected = cookies[CSRF_COOKIE];
        if (typeof sent !== 'string' || !expected || !sameSecret(sent, expected)) {
          throw new MeshidError('ERR_CSRF', `a cookie session needs the ${CSRF_HEADER} header for ${request.method}`);
        }
      }
      return { user: session.user, session, via: 'cookie' };
    }
    const socket = request.socket;
    if (this.adminClientCerts && socket instanceof TLSSocket && socket.authorized && socket.getPeerCertificate().raw) {
      refuseCrossOrigin(headers);
      return { user: { name: ADMIN_USER, groups: [ADMIN_GROUP, AUTHENTICATED_GROUP] }, session: undefined, via: 'admin-client-certificate' };
    }
    throw new MeshidError('ERR_UNAUTHENTICATED', 'no session: run `meshid login`, or send the ID token as a Bearer token');
  }
}
