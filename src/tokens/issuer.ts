import { randomUUID, sign, type KeyObject } from 'node:crypto';
import { MeshidError, systemClock, type Clock } from '../core/index.ts';
import { changedInTransit } from '../kube/index.ts';
import { NOT_BEFORE_BACKDATE_SECONDS, b64url, reservedIdentity, RESERVED_PREFIX, type UserTokenClaims, type UserTokenHeader } from './user-token.ts';

export interface IssueRequest {
  name: string;
  groups: string[];
  validForMs: number;
}

/** Issues user tokens; `DisabledIssuer` stands in when the server must not issue any. */
export interface Issuer {
  /** False for the stand-in of a control plane that issues nothing. */
  readonly enabled: boolean;
  issue(request: IssueRequest): string;
}

/** The key an issuer signs with: `kid` goes in the header, as a string. */
export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** Signs a user token with Node's crypto (OpenSSL). Works offline: nothing but a key needed. */
export function signUserToken(key: SigningKey, request: IssueRequest, clock: Clock = systemClock): string {
  if (!request.name) throw new MeshidError('ERR_INVALID_ARGUMENT', 'name is required');
  if (!(request.validForMs > 0) || !Number.isFinite(request.validForMs)) throw new MeshidError('ERR_INVALID_ARGUMENT', 'validFor must be a positive, finite duration');
  const reserved = reservedIdentity(request.name, request.groups);
  if (reserved !== undefined) {
    throw new MeshidError('ERR_TOKEN_IDENTITY_RESERVED', `"${reserved}" is reserved by Kubernetes: user tokens never carry names or groups starting with "${RESERVED_PREFIX}"`, {
      hint: 'Bind RBAC roles to a group of your own instead, e.g. --group ops.',
    });
  }
  if ([request.name, ...request.groups].some(changedInTransit)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'names and groups may not hold control characters, nor start or end with a space or tab: Kubernetes would receive them changed');
  }
  if (!key.kid) throw new MeshidError('ERR_INVALID_ARGUMENT', 'kid must not be empty');
  const now = Math.floor(clock.now() / 1000);
  const header: UserTokenHeader = { alg: 'RS256', kid: key.kid, typ: 'JWT' };
  const claims: UserTokenClaims = {
    Name: request.name,
    Groups: request.groups,
    exp: now + Math.ceil(request.validForMs / 1000),
    nbf: now - NOT_BEFORE_BACKDATE_SECONDS,
    iat: now,
    jti: randomUUID(),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key.privateKey))}`;
}

/**
 * Default of `userTokens.maxValidFor`, in Kuma's Go duration syntax: a year. A token is a
 * bearer credential that only revocation ends early, so "forever" is never on offer.
 */
export const DEFAULT_MAX_VALID_FOR = '8760h';

/**
 * Issues with whatever key currently signs (the highest serial), for at most `maxValidForMs`:
 * every way of issuing online (`/tokens/user`, GraphQL, the admin token) comes through here.
 */
export class KeyedIssuer implements Issuer {
  readonly enabled = true;

  constructor(
    private readonly currentKey: () => SigningKey,
    private readonly clock: Clock = systemClock,
    private readonly maxValidForMs: number = parseDuration(DEFAULT_MAX_VALID_FOR),
  ) {}

  issue(request: IssueRequest): string {
    if (request.validForMs > this.maxValidForMs) {
      throw new MeshidError('ERR_VALID_FOR_TOO_LONG', `validFor may be at most ${this.maxValidForMs / 3_600_000}h on this control plane (userTokens.maxValidFor)`, {
        hint: 'Issue a shorter token and a new one when it expires; revocation is the only other way a token ends.',
      });
    }
    return signUserToken(this.currentKey(), request, this.clock);
  }
}

export function issuerDisabled(): MeshidError {
  return new MeshidError('ERR_ISSUER_DISABLED', 'this control plane does not issue user tokens (enableIssuer: false); issue them offline with `meshid generate user-token --signing-key-path`');
}

export class DisabledIssuer implements Issuer {
  readonly enabled = false;

  issue(): string {
    throw issuerDisabled();
  }
}

/** Go-style durations as kumactl takes them: `24h`, `30m`, `1h30m`, `90s`, `500ms`. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const parts = /^(\d+(?:\.\d+)?(ms|s|m|h|d))+$/.test(text.trim()) ? text.trim().match(/\d+(?:\.\d+)?(ms|s|m|h|d)/g) : null;
  if (!parts) throw new MeshidError('ERR_INVALID_ARGUMENT', `"${text}" is not a duration; use e.g. 24h, 30m or 1h30m`);
  const ms = parts.reduce((sum, part) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(part);
    return sum + Number(match?.[1]) * (units[match?.[2] ?? ''] ?? NaN);
  }, 0);
  if (!Number.isFinite(ms)) throw new MeshidError('ERR_INVALID_ARGUMENT', `"${text}" is too long a duration`);
  return ms;
}
