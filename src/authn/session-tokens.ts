import { hkdfSync, randomUUID } from 'node:crypto';
import { CompactEncrypt, SignJWT, compactDecrypt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import type { Capabilities, Identity, Session } from './identity.ts';
import type { SessionKey, SessionKeySource } from './session-keys.ts';

export const SESSION_TTL_MS = 10 * 60 * 60 * 1000;
export const WRAPPED_TTL_MS = 10 * 1000;
const ISSUER = 'meshid';
const AUDIENCE = 'meshid-session';
const WRAP_INFO = 'meshid wrapped token v1';
/** Anything longer is not one of ours; refuse before parsing it. */
const MAX_TOKEN_LENGTH = 16 * 1024;

interface SessionClaims {
  sub: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
  caps: Capabilities;
}

export interface IssuedSession {
  token: string;
  expiresAt: number;
  session: Session;
}

/**
 * ID tokens (HS256 JWT, 10 h) and the wrapped form handed to a browser (JWE `dir` +
 * A256GCM, 10 s, single use). The algorithm lists are fixed, so a token that names
 * another algorithm (`none`, RS256 with our key as HMAC secret, …) is refused.
 */
export class SessionTokens {
  readonly #keys: SessionKeySource;
  readonly #clock: Clock;
  readonly #used = new Map<string, number>();
  /**
   * Tokens already verified, with the key object that verified them. Every proxied request
   * carries the same token; re-running HMAC through WebCrypto each time is most of the
   * proxy's own cost. A hit counts only while the very same key is still in force, so a
   * rotation, deletion or invalidation (each replaces the key objects) empties it.
   */
  readonly #verified: TtlCache<string, { session: Session; key: SessionKey }>;

  constructor(keys: SessionKeySource, clock: Clock = systemClock) {
    this.#keys = keys;
    this.#clock = clock;
    this.#verified = new TtlCache(60_000, 10_000, clock);
  }

  async issue(user: Identity, capabilities: Capabilities): Promise<IssuedSession> {
    const key = this.#keys.current();
    const now = this.#clock.now();
    const expiresAt = now + SESSION_TTL_MS;
    const jti = randomUUID();
    const claims: SessionClaims = {
      sub: user.name,
      groups: user.groups,
      ...(user.uid ? { uid: user.uid } : {}),
      ...(user.extra && Object.keys(user.extra).length > 0 ? { extra: user.extra } : {}),
      caps: capabilities,
    };
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .setJti(jti)
      .sign(key.secret);
    return { token, expiresAt, session: { user, capabilities, expiresAt, jti } };
  }

  async verify(token: string): Promise<Session> {
    if (token.length > MAX_TOKEN_LENGTH) throw new MeshidError('ERR_TOKEN_INVALID', 'token too long');
    const hit = this.#verified.get(token);
    if (hit && hit.session.expiresAt > this.#clock.now() && this.#keys.find(hit.key.kid) === hit.key) return hit.session;
    let key: SessionKey | undefined;
    try {
      const { payload } = await jwtVerify(token, (header) => (key = this.#key(header.kid)).secret, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
      });
      const claims = payload as unknown as SessionClaims & { exp: number; jti: string };
      if (!Array.isArray(claims.groups) || typeof claims.caps !== 'object' || claims.caps === null) {
        throw new MeshidError('ERR_TOKEN_INVALID', 'session token lacks groups or capabilities');
      }
      const session: Session = {
        user: {
          name: claims.sub,
          groups: claims.groups,
          ...(claims.uid ? { uid: claims.uid } : {}),
          ...(claims.extra ? { extra: claims.extra } : {}),
        },
        capabilities: claims.caps,
        expiresAt: claims.exp * 1000,
        jti: claims.jti,
      };
      if (key) this.#verified.set(token, { session, key });
      return session;
    } catch (error) {
      throw toTokenError(error, 'ERR_TOKEN_EXPIRED', 'ERR_TOKEN_INVALID', 'session token');
    }
  }

  /** Wraps an ID token for a URL: encrypted, so access logs never hold a usable session. */
  async wrap(token: string): Promise<string> {
    const key = this.#keys.current();
    const now = this.#clock.now();
    const payload = JSON.stringify({ t: token, jti: randomUUID(), exp: now + WRAPPED_TTL_MS });
    return new CompactEncrypt(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid })
      .encrypt(wrapKey(key));
  }

  /** Opens a wrapped token once; a second use, or one older than 10 s, is refused. */
  async unwrap(wrapped: string): Promise<string> {
    if (wrapped.length > MAX_TOKEN_LENGTH) throw new MeshidError('ERR_WRAPPED_TOKEN_INVALID', 'wrapped token too long');
    let payload: { t?: unknown; jti?: unknown; exp?: unknown };
    try {
      const { kid } = decodeProtectedHeader(wrapped);
      const { plaintext } = await compactDecrypt(wrapped, wrapKey(this.#key(kid)), {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      payload = JSON.parse(new TextDecoder().decode(plaintext)) as typeof payload;
    } catch (error) {
      throw toTokenError(error, 'ERR_WRAPPED_TOKEN_INVALID', 'ERR_WRAPPED_TOKEN_INVALID', 'wrapped token');
    }
    const { t, jti, exp } = payload;
    if (typeof t !== 'string' || typeof jti !== 'string' || typeof exp !== 'number') {
      throw new MeshidError('ERR_WRAPPED_TOKEN_INVALID', 'wrapped token is malformed');
    }
    const now = this.#clock.now();
    if (exp <= now) throw new MeshidError('ERR_WRAPPED_TOKEN_INVALID', 'wrapped token expired: run `meshid login` again for a fresh one');
    this.#sweep(now);
    if (this.#used.has(jti)) throw new MeshidError('ERR_WRAPPED_TOKEN_REPLAYED', 'wrapped token was already used');
    this.#used.set(jti, exp);
    return t;
  }

  #key(kid: unknown): SessionKey {
    const key = typeof kid === 'string' ? this.#keys.find(kid) : undefined;
    if (!key) throw new MeshidError('ERR_TOKEN_INVALID', 'token signed by an unknown or retired key');
    return key;
  }

  /** Used ids are needed only until they would have expired anyway. */
  #sweep(now: number): void {
    for (const [jti, exp] of this.#used) if (exp <= now) this.#used.delete(jti);
  }
}

function wrapKey(key: SessionKey): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', key.secret, new Uint8Array(0), WRAP_INFO, 32));
}

function toTokenError(
  error: unknown,
  expired: 'ERR_TOKEN_EXPIRED' | 'ERR_WRAPPED_TOKEN_INVALID',
  invalid: 'ERR_TOKEN_INVALID' | 'ERR_WRAPPED_TOKEN_INVALID',
  what: string,
): MeshidError {
  if (error instanceof MeshidError) return error.code === 'ERR_TOKEN_INVALID' ? new MeshidError(invalid, error.message) : error;
  if (error instanceof errors.JWTExpired) return new MeshidError(expired, `${what} expired`, { cause: error });
  if (error instanceof errors.JOSEError) return new MeshidError(invalid, `${what} is invalid (${error.code})`, { cause: error });
  return new MeshidError(invalid, `${what} is invalid`, { cause: error });
}
