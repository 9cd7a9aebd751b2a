import { MeshidError } from '../core/index.ts';

/**
 * The `exp` of a JWT bearer token (milliseconds), read without checking its signature.
 * That is safe because it is only ever used to shorten a session: a forged `exp` can end a
 * session early, never make one longer or let a token in (TokenReview decides that).
 * Opaque tokens (static token files, some cloud tokens) have no expiry of their own.
 */
export function bearerExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const { exp } = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof exp === 'number' && Number.isFinite(exp) && exp > 0 ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When the client says its credential expires (an exec plugin's `expirationTimestamp`, which
 * only the client sees). It can only shorten a session, so taking the client's word is safe.
 */
export function claimedExpiry(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const at = typeof value === 'string' && value.length <= 64 ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(at)) throw new MeshidError('ERR_INVALID_ARGUMENT', 'credentialExpiresAt must be an RFC 3339 time, e.g. 2030-01-01T00:00:00Z');
  return at;
}

/** The earliest of the given times; absent ones do not count. */
export function earliest(...times: (number | undefined)[]): number | undefined {
  const known = times.filter((t): t is number => t !== undefined);
  return known.length > 0 ? Math.min(...known) : undefined;
}
