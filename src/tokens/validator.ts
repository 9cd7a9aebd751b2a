import { createHash, verify, type KeyObject } from 'node:crypto';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import { changedInTransit } from '../kube/index.ts';
import { AUTHENTICATED_GROUP, CLOCK_SKEW_SECONDS, DEFAULT_IDENTITY_PREFIX, identityPrefixProblem, prefixedIdentity, reservedIdentity } from './user-token.ts';

/** Where validation finds a public key by `kid`: Secrets, static config, or both. */
export interface PublicKeySource {
  publicKey(kid: string): KeyObject | undefined;
}

/** Revoked token ids; implementations keep them in memory, so checking costs no call. */
export interface Revocations {
  isRevoked(jti: string): boolean;
}

/** Who a valid token is to Kubernetes: its claims under the identity prefix, not the claims themselves. */
export interface ValidatedUser {
  name: string;
  groups: string[];
  jti: string;
  expiresAt: number;
}

const MAX_TOKEN_LENGTH = 8 * 1024;
/** Tokens seen before, by hash. A client sends the same token on every call. */
export const SEEN_TOKENS_DEFAULT = 10_000;
/** An entry lives at most this long; each hit still re-checks expiry, revocation and the key. */
const SEEN_TOKEN_TTL_MS = 5 * 60_000;

interface Seen {
  user: ValidatedUser;
  kid: string;
  key: KeyObject;
}
const SEGMENT = /^[A-Za-z0-9_-]+$/;

const invalid = (why: string): MeshidError => new MeshidError('ERR_TOKEN_INVALID', `user token ${why}`);

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw invalid(`${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${what} is not an object`);
  return value as Record<string, unknown>;
}

/**
 * The token's groups. Absent and `null` both mean none: kumactl, issuing without `--group`,
 * writes `"Groups": null` (Go encodes a nil slice so) and Kuma's validator accepts it. Any
 * other non-list is refused rather than guessed at.
 */
function groupsClaim(groups: unknown): string[] {
  if (groups === undefined || groups === null) return [];
  if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string')) throw invalid('Groups must be a list of strings or null');
  return groups;
}

/**
 * Validates user tokens on the hot path with Node's crypto directly: the header must say
 * RS256 (so `none` and HMAC-with-the-public-key are refused before any key is touched), the
 * `kid` must name a known key, and the revocation check is a set lookup.
 *
 * It answers the Kubernetes identity, with the identity prefix applied here rather than at
 * issue, so that tokens signed offline (which never pass an issuer) are held to it too.
 */
export class UserTokenValidator {
  /**
   * Tokens that validated, keyed by their SHA-256 (the cache holds no usable credential). A hit
   * skips parsing and the RSA check, and nothing else: expiry, revocation and the signing
   * key being still the one that verified it are checked on every call, so a revoked token or
   * a removed key is refused at once. Failures are never cached.
   */
  readonly #seen: TtlCache<string, Seen>;

  constructor(
    private readonly keys: PublicKeySource[],
    private readonly revocations: Revocations,
    private readonly clock: Clock = systemClock,
    private readonly identityPrefix: string = DEFAULT_IDENTITY_PREFIX,
    seenTokens: number = SEEN_TOKENS_DEFAULT,
  ) {
    const problem = identityPrefixProblem(identityPrefix);
    if (problem !== undefined) throw new MeshidError('ERR_INVALID_ARGUMENT', `identity prefix ${JSON.stringify(identityPrefix)} ${problem}`);
    this.#seen = new TtlCache(SEEN_TOKEN_TTL_MS, Math.max(1, seenTokens), clock);
  }

  validate(token: string): ValidatedUser {
    if (token.length > MAX_TOKEN_LENGTH) throw invalid(`is longer than ${MAX_TOKEN_LENGTH} bytes`);
    const digest = createHash('sha256').update(token).digest('base64url');
    const seen = this.#seen.get(digest);
    if (seen && this.#key(seen.kid) === seen.key) {
      this.#stillValid(seen.user);
      // A copy: what a caller does with its answer must not change the next caller's.
      return { ...seen.user, groups: [...seen.user.groups] };
    }
    const { user, kid, key } = this.#validate(token);
    this.#seen.set(digest, { user: { ...user, groups: [...user.groups] }, kid, key });
    return user;
  }

  /** What a token's signature cannot settle once and for all: time and revocation. */
  #stillValid(user: ValidatedUser): void {
    if (user.expiresAt <= this.clock.now()) throw new MeshidError('ERR_TOKEN_EXPIRED', 'user token expired');
    if (this.revocations.isRevoked(user.jti)) throw new MeshidError('ERR_TOKEN_REVOKED', 'user token was revoked');
  }

  #key(kid: string): KeyObject | undefined {
    for (const source of this.keys) {
      const key = source.publicKey(kid);
      if (key) return key;
    }
    return undefined;
  }

  #validate(token: string): Seen {
    const parts = token.split('.');
    const [h, p, s] = parts;
    if (parts.length !== 3 || !h || !p || !s || !SEGMENT.test(h) || !SEGMENT.test(p) || !SEGMENT.test(s)) throw invalid('is not a compact JWS');
    const header = decodeJson(h, 'header');
    if (header['alg'] !== 'RS256') throw invalid(`alg ${JSON.stringify(header['alg'])} is not accepted (only RS256)`);
    if ('crit' in header) throw invalid('has critical header parameters meshid does not understand');
    const kid = header['kid'];
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128) throw invalid('kid must be a non-empty string');
    const key = this.#key(kid);
    // RS256 means an RSA key; a key of another type under a matching kid must not verify.
    if (!key || key.asymmetricKeyType !== 'rsa') throw invalid(`kid ${JSON.stringify(kid)} names no known RSA signing key`);
    if (!verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) throw invalid('signature does not verify');

    const claims = decodeJson(p, 'payload');
    const { Name: name, exp, nbf, jti } = claims;
    if (typeof name !== 'string' || name.length === 0) throw invalid('has no Name');
    const groups = groupsClaim(claims['Groups']);
    const reserved = reservedIdentity(name, groups);
    if (reserved !== undefined) throw invalid(`claims ${JSON.stringify(reserved)}, which is reserved by Kubernetes`);
    if ([name, ...groups].some(changedInTransit)) throw invalid('has a Name or group that Kubernetes would receive changed (control characters, surrounding spaces)');
    if (typeof jti !== 'string' || jti.length === 0) throw invalid('has no jti');
    if (typeof exp !== 'number') throw invalid('has no exp');
    if (typeof nbf === 'number' && nbf > this.clock.now() / 1000 + CLOCK_SKEW_SECONDS) throw invalid('is not valid yet (nbf)');
    const kubeGroups = new Set(groups.map((g) => prefixedIdentity(g, this.identityPrefix)));
    kubeGroups.delete(AUTHENTICATED_GROUP);
    const user = { name: prefixedIdentity(name, this.identityPrefix), groups: [...kubeGroups, AUTHENTICATED_GROUP], jti, expiresAt: exp * 1000 };
    this.#stillValid(user);
    return { user, kid, key };
  }
}

/** Public keys given in the server's config (offline issuing), by `kid`. */
export class StaticPublicKeys implements PublicKeySource {
  readonly #keys: Map<string, KeyObject>;

  constructor(keys: { kid: string; key: KeyObject }[]) {
    this.#keys = new Map(keys.map((k) => [k.kid, k.key]));
  }

  publicKey(kid: string): KeyObject | undefined {
    return this.#keys.get(kid);
  }

  entries(): { kid: string; key: KeyObject }[] {
    return [...this.#keys].map(([kid, key]) => ({ kid, key }));
  }
}

export const noRevocations: Revocations = { isRevoked: () => false };
