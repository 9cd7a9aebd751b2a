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
export const ADMIN_GROUP = 'mesh-system:admin';

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

/** nbf and iat are set this far in the past, so a verifier whose clock is slightly behind still accepts. */
export const CLOCK_SKEW_SECONDS = 5;

export const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');
