import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { CompactEncrypt, SignJWT, compactDecrypt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import type { Capabilities, Identity, Session } from './identity.ts';
import { deriveKey, type SessionKey, type SessionKeySource } from './session-keys.ts';
import { NO_RECHECK, type CredentialRecheck } from './session-recheck.ts';
import { MemorySessionRevocations, type SessionRevocations } from './session-revocations.ts';
import { MemoryUsedOnce, type UsedOnce } from './used-once.ts';

export const SESSION_TTL_MS = 10 * 60 * 60 * 1000;
export const WRAPPED_TTL_MS = 10 * 1000;
const ISSUER = 'meshid';
const AUDIENCE = 'meshid-session';
const WRAP_INFO = 'meshid wrapped token v1';
const CREDENTIAL_INFO = 'meshid session credential v1';
/** The audience of wrapped tokens when none is configured (unit tests, tools). */
export const DEFAULT_AUDIENCE = 'meshid';
/** Anything longer is not one of ours; refuse before parsing it. */
const MAX_TOKEN_LENGTH = 16 * 1024;

interface SessionClaims {
  sub: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
  caps: Capabilities;
  /** The kube bearer token the session came from, sealed (AES-256-GCM), for re-review. */
  cred?: string;
}

/** What a session is bound to, beyond who it is. */
export interface IssueOptions {
  /** When the credential the session came from ends; the session ends then at the latest. */
  notAfter?: number | undefined;
  /** The kube bearer token, carried sealed in the session so any replica can re-review it. */
  bearer?: string | undefined;
}

export interface SessionTokenOptions {
  /** Records each wrapped token's use, so exactly one replica accepts it. Default: this process only. */
  usedOnce?: UsedOnce;
  /** Re-reviews the bearer credential a session carries. Default: none (tools and unit tests). */
  recheck?: CredentialRecheck;
  /** Sessions ended by logout. Default: this process only. */
  revocations?: SessionRevocations;
  /** The installation wrapped tokens are for (`installationAudience`). */
  audience?: string;
}

export interface IssuedSession {
  token: string;
  expiresAt: number;
  session: Session;
}

/**
 * ID tokens (HS256 JWT, 10 h at most, never past the credential they came from) and the
 * wrapped form handed to a browser (JWE `dir` + A256GCM, 10 s, single use across replicas).
 * The algorithm lists are fixed, so a token that names another algorithm (`none`, RS256 with
 * our key as HMAC secret, …) is refused.
 */
export class SessionTokens {
  readonly #keys: SessionKeySource;
  readonly #clock: Clock;
  readonly #usedOnce: UsedOnce;
  readonly #recheck: CredentialRecheck;
  readonly #revocations: SessionRevocations;
  readonly #audience: string;
  /**
   * Tokens already verified, with the key object that verified them. Every proxied request
   * carries the same token; re-running HMAC through WebCrypto each time is most of the
   * proxy's own cost. A hit counts only while the very same key is still in force, so a
   * rotation, deletion or invalidation (each replaces the key objects) empties it.
   */
  readonly #verified: TtlCache<string, Verified>;

  constructor(keys: SessionKeySource, clock: Clock = systemClock, options: SessionTokenOptions = {}) {
    this.#keys = keys;
    this.#clock = clock;
    this.#usedOnce = options.usedOnce ?? new MemoryUsedOnce(clock);
    this.#recheck = options.recheck ?? NO_RECHECK;
    this.#revocations = options.revocations ?? new MemorySessionRevocations();
    this.#audience = options.audience ?? DEFAULT_AUDIENCE;
    this.#verified = new TtlCache(60_000, 10_000, clock);
  }

  async issue(user: Identity, capabilities: Capabilities, options: IssueOptions = {}): Promise<IssuedSession> {
    const key = this.#keys.current();
    const now = this.#clock.now();
    const expiresAt = Math.min(now + SESSION_TTL_MS, options.notAfter ?? Number.POSITIVE_INFINITY);
    const jti = randomUUID();
    const claims: SessionClaims = {
      sub: user.name,
      groups: user.groups,
      ...(user.uid ? { uid: user.uid } : {}),
      ...(user.extra && Object.keys(user.extra).length > 0 ? { extra: user.extra } : {}),
      caps: capabilities,
      ...(options.bearer ? { cred: sealCredential(key, jti, options.bearer) } : {}),
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

  /**
   * The session a token stands for, while it stands: signed by a key in force, not expired,
   * not ended by logout on any replica, and its credential still accepted by Kubernetes.
   */
  async verify(token: string): Promise<Session> {
    const { session, key, cred } = await this.#verifySignature(token);
    if (this.#revocations.isRevoked(session)) throw new MeshidError('ERR_TOKEN_REVOKED', 'this session was ended by logout');
    if (cred !== undefined) await this.#recheck.check(session, () => openCredential(key, session.jti, cred));
    return session;
  }

  /** Ends a session everywhere before its expiry (logout). */
  async revoke(session: Session): Promise<void> {
    await this.#revocations.revoke(session);
  }

  async #verifySignature(token: string): Promise<Verified> {
    if (token.length > MAX_TOKEN_LENGTH) throw new MeshidError('ERR_TOKEN_INVALID', 'token too long');
    const hit = this.#verified.get(token);
    if (hit && hit.session.expiresAt > this.#clock.now() && this.#keys.find(hit.key.kid) === hit.key) return hit;
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
      if (!Array.isArray(claims.groups) || typeof claims.caps !== 'object' || claims.caps === null || (claims.cred !== undefined && typeof claims.cred !== 'string')) {
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
      if (!key) throw new MeshidError('ERR_TOKEN_INVALID', 'session token was verified by no key');
      const verified: Verified = { session, key, ...(claims.cred !== undefined ? { cred: claims.cred } : {}) };
      this.#verified.set(token, verified);
      return verified;
    } catch (error) {
      throw toTokenError(error, 'ERR_TOKEN_EXPIRED', 'ERR_TOKEN_INVALID', 'session token');
    }
  }

  /** Wraps an ID token for a URL: encrypted, so access logs never hold a usable session. */
  async wrap(token: string): Promise<string> {
    const key = this.#keys.current();
    const now = this.#clock.now();
    const payload = JSON.stringify({ t: token, jti: randomUUID(), exp: now + WRAPPED_TTL_MS, aud: this.#audience });
    return new CompactEncrypt(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid })
      .encrypt(wrapKey(key));
  }

  /**
   * Opens a wrapped token once, on any replica; a second use, one older than 10 s, or one made
   * for another installation is refused. The use is recorded only after the token decrypted,
   * so garbage never costs a Kubernetes write.
   */
  async unwrap(wrapped: string): Promise<string> {
    if (wrapped.length > MAX_TOKEN_LENGTH) throw new MeshidError('ERR_WRAPPED_TOKEN_INVALID', 'wrapped token too long');
    let payload: { t?: unknown; jti?: unknown; exp?: unknown; aud?: unknown };
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
    const { t, jti, exp, aud } = payload;
    if (typeof t !== 'string' || typeof jti !== 'string' || typeof exp !== 'number') {
      throw new MeshidError('ERR_WRAPPED_TOKEN_INVALID', 'wrapped token is malformed');
    }
    if (exp <= this.#clock.now()) throw new MeshidError('ERR_WRAPPED_TOKEN_INVALID', 'wrapped token expired: run `meshid login` again for a fresh one');
    if (aud !== this.#audience) throw new MeshidError('ERR_WRAPPED_TOKEN_INVALID', 'wrapped token was made for another meshid');
    if (!(await this.#usedOnce.claim('wrapped-token', jti, exp))) throw new MeshidError('ERR_WRAPPED_TOKEN_REPLAYED', 'wrapped token was already used');
    return t;
  }

  #key(kid: unknown): SessionKey {
    const key = typeof kid === 'string' ? this.#keys.find(kid) : undefined;
    if (!key) throw new MeshidError('ERR_TOKEN_INVALID', 'token signed by an unknown or retired key');
    return key;
  }
}

interface Verified {
  session: Session;
  /** The key that verified the token; it also sealed the credential. */
  key: SessionKey;
  cred?: string;
}

function wrapKey(key: SessionKey): Uint8Array {
  return new Uint8Array(deriveKey(key, WRAP_INFO));
}

/**
 * Seals the kube bearer token into the session: AES-256-GCM under a key of its own (HKDF of
 * the session key), the session's jti as associated data, so a sealed credential opens only
 * in the session it was issued with. `iv || ciphertext || tag`, base64url.
 */
function sealCredential(key: SessionKey, jti: string, token: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(key, CREDENTIAL_INFO), iv).setAAD(Buffer.from(jti));
  return Buffer.concat([iv, cipher.update(token, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64url');
}

function openCredential(key: SessionKey, jti: string, sealed: string): string {
  const raw = Buffer.from(sealed, 'base64url');
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(key, CREDENTIAL_INFO), raw.subarray(0, 12)).setAAD(Buffer.from(jti));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new MeshidError('ERR_TOKEN_INVALID', 'session token carries a credential that does not open', { cause: error });
  }
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
