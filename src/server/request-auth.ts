import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
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

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface Caller {
  /** undefined in anonymous mode: calls go out as the server's own account. */
  user: Identity | undefined;
  session: Session | undefined;
  via: 'bearer' | 'cookie' | 'anonymous' | 'user-token' | 'admin-client-certificate';
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

/**
 * Who is calling: a session token as Bearer (or X-Authorization), or the session cookie.
 * Cookie-authenticated unsafe methods must echo the CSRF cookie in X-CSRF-Token, which a
 * cross-site page cannot read.
 */
export class RequestAuthenticator {
  constructor(
    private readonly tokens: SessionTokens,
    private readonly anonymous: boolean,
    private readonly userTokens?: UserTokenValidator,
    /** Deprecated admin client certificates: the HTTPS listener verified them against their CA. */
    private readonly adminClientCerts = false,
  ) {}

  async authenticate(headers: IncomingHttpHeaders, method: string, socket?: Socket): Promise<Caller> {
    if (this.anonymous) return { user: undefined, session: undefined, via: 'anonymous' };
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
      const session = await this.tokens.verify(cookie);
      if (!SAFE_METHODS.has(method.toUpperCase())) {
        const sent = headers[CSRF_HEADER];
        const expected = cookies[CSRF_COOKIE];
        if (typeof sent !== 'string' || !expected || !sameSecret(sent, expected)) {
          throw new MeshidError('ERR_CSRF', `a cookie session needs the ${CSRF_HEADER} header for ${method}`);
        }
      }
      return { user: session.user, session, via: 'cookie' };
    }
    if (this.adminClientCerts && socket instanceof TLSSocket && socket.authorized && socket.getPeerCertificate().raw) {
      return { user: { name: ADMIN_USER, groups: [ADMIN_GROUP, AUTHENTICATED_GROUP] }, session: undefined, via: 'admin-client-certificate' };
    }
    throw new MeshidError('ERR_UNAUTHENTICATED', 'no session: run `meshid login`, or send the ID token as a Bearer token');
  }
}
