/**
 * The user token format, as Kuma defines it: an RS256 JWT whose header `kid` is the signing
 * key's serial (a string) and whose claims are `Name`, `Groups`, `exp`, `nbf`, `iat`, `jti`.
 */
export interface UserTokenClaims {
  Name: string;
  Groups: string[];
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
}

export interface UserTokenHeader {
  alg: 'RS256';
  kid: string;
  typ: 'JWT';
}

export const AUTHENTICATED_GROUP = 'mesh-system:authenticated';
export const UNAUTHENTICATED_GROUP = 'mesh-system:unauthenticated';
export const ANONYMOUS_USER = 'mesh-system:anonymous';
export const ADMIN_USER = 'mesh-system:admin';
// Shared with install's RBAC, so it lives in the contract.
export { ADMIN_GROUP } from '../contract/index.ts';

/**
 * Kubernetes reserves `system:` for its own users and groups (system:masters, service
 * accounts, nodes). meshid may impersonate any name, so a user token naming one would turn
 * the right to issue tokens into cluster-admin. Tokens never carry them.
 */
export const RESERVED_PREFIX = 'system:';

/**
 * The first reserved name or group in a token's identity, if any. Surrounding whitespace is
 * looked through, because the apiserver trims it from the Impersonate-* header values.
 */
export function reservedIdentity(name: string, groups: readonly string[]): string | undefined {
  return [name, ...groups].find((value) => value.trim().toLowerCase().startsWith(RESERVED_PREFIX));
}

/**
 * Every user-token identity reaches Kubernetes under this prefix, as OIDC identities do under
 * the apiserver's `--oidc-username-prefix`: issuing a token can then only ever name someone
 * in the mesh's own namespace of names, never an existing Kubernetes user or group
 * (docs/adr/0001-user-token-identity-prefix.md). Kuma's names (`mesh-system:admin`) are
 * already in it.
 */
export const DEFAULT_IDENTITY_PREFIX = 'mesh-system:';

/**
 * Why `prefix` cannot be an identity prefix, or undefined when it can. A prefix that is
 * itself reserved, or a beginning of `system:` (`sys` + `tem:masters`), would let a token
 * spell a reserved name; whitespace and control characters would be changed in transit.
 */
export function identityPrefixProblem(prefix: string): string | undefined {
  if (prefix.length === 0) return 'must not be empty';
  if (/[\s\p{Cc}\p{Cf}]/u.test(prefix)) return 'must not hold whitespace, control or format characters';
  const lower = prefix.toLowerCase();
  if (lower.startsWith(RESERVED_PREFIX) || RESERVED_PREFIX.startsWith(lower)) return `must not start with "${RESERVED_PREFIX}" nor be a beginning of it: Kubernetes reserves those names`;
  return undefined;
}

/** The Kubernetes name of a token's Name or group: kept when already under the prefix, prefixed otherwise. */
export function prefixedIdentity(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value : prefix + value;
}

/**
 * How far in the past an issued token's `nbf` is set: five minutes, as Kuma's issuer does, so
 * a validator whose clock is behind the issuer's by up to that accepts a token at once. `iat`
 * stays the true time of issue, as Kuma's does; Kuma's validator (golang-jwt v4) refuses an
 * `iat` ahead of its own clock, which holds for Kuma's tokens and meshid's alike.
 */
export const NOT_BEFORE_BACKDATE_SECONDS = 300;

/**
 * How far ahead of meshid's clock a token's `nbf` may be and still be accepted, for issuers
 * that do not backdate it (meshid's and Kuma's do, by NOT_BEFORE_BACKDATE_SECONDS).
 */
export const CLOCK_SKEW_SECONDS = 5;

export const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');
