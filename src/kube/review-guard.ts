import { createHash } from 'node:crypto';
import { WellKnownApi, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, TtlCache, systemClock, type Clock, type Logger } from '../core/index.ts';

/**
 * Every TokenReview is a request to the apiserver (and, behind a webhook authenticator, to
 * whatever it asks, such as AWS STS). Login and the CA review tokens that unauthenticated
 * callers send, so this guard stands in front of both: it refuses what cannot be a token of
 * this cluster without asking, answers a token refused moments ago from memory, and gives each
 * client address a bounded allowance of reviews. A guard serves one reviewer: its refusals are
 * remembered for that reviewer's question (audiences) only.
 */

/** A refused token is refused again from memory for this long. */
export const REFUSAL_CACHE_MS = 5_000;

/** A projected service-account token is about a kilobyte, an OIDC token with many groups a few; nothing real comes near this. */
export const MAX_TOKEN_BYTES = 16 * 1024;

/** The `iss` of Secret-based (legacy) service-account tokens, which the apiserver still accepts. */
export const LEGACY_SERVICE_ACCOUNT_ISSUER = 'kubernetes/serviceaccount';

/**
 * How much later than its `exp` a JWT is still sent for review: authenticators allow some
 * clock skew, so only a token that is expired for every one of them is refused here.
 */
const EXPIRY_LEEWAY_MS = 60_000;

/** RFC 6750's b64token: the characters a bearer token may have on the wire. */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** A token bucket per client: `burst` reviews at once, refilled at `perSecond`. */
export interface ReviewRate {
  burst: number;
  perSecond: number;
}

export interface ReviewGuardOptions {
  /** Absent: reviews are not limited (the node agent, whose callers share one Unix socket). */
  rate?: ReviewRate | undefined;
  refusalCacheMs?: number;
  /**
   * The `iss` values a JWT may carry to be worth a review. Absent: any issuer is reviewed
   * (the issuers could not be learned).
   */
  issuers?: readonly string[] | undefined;
  /** Only JWTs can be what the caller wants (service-account tokens for the CA). */
  jwtOnly?: boolean;
  clock?: Clock;
  /** Called once per decision, for metrics. */
  observe?: (outcome: ReviewOutcome) => void;
}

export type ReviewOutcome = 'reviewed' | 'screened' | 'refusal-cached' | 'rate-limited';

/**
 * What a review answered. A refusal's reason is for the log: when Kubernetes gave it, it is the
 * apiserver's text, which unauthenticated callers are not told; the guard's own reasons
 * (`byGuard`) name no secret and may be shown.
 */
export type ReviewVerdict<T> = { accepted: true; value: T } | { accepted: false; reason: string; byGuard?: boolean };

/** A client used up its allowance of TokenReviews: HTTP 429, gRPC RESOURCE_EXHAUSTED. */
export class ReviewRateLimitedError extends MeshidError {
  constructor(readonly retryAfterSeconds: number) {
    super('ERR_RATE_LIMITED', `too many token reviews from this client; retry in ${retryAfterSeconds} s`);
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenReviewGuard {
  readonly #options: ReviewGuardOptions;
  readonly #clock: Clock;
  readonly #refusals: TtlCache<string, string>;
  readonly #buckets: TtlCache<string, Bucket> | undefined;

  constructor(options: ReviewGuardOptions = {}) {
    const rate = options.rate;
    if (rate && (!(rate.burst >= 1) || !(rate.perSecond > 0))) throw new MeshidError('ERR_INVALID_ARGUMENT', 'a review rate needs burst >= 1 and perSecond > 0');
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#refusals = new TtlCache(options.refusalCacheMs ?? REFUSAL_CACHE_MS, 10_000, this.#clock);
    // A bucket left alone until it would be full again is the same as no bucket.
    this.#buckets = rate ? new TtlCache(Math.ceil((rate.burst / rate.perSecond) * 1000), 10_000, this.#clock) : undefined;
  }

  /**
   * Runs `ask` (one TokenReview) unless the token is refused before asking. `client` is the
   * caller's address; `undefined` means meshid itself asks (a session re-check), which is
   * not limited. Throws ReviewRateLimitedError when the client has no allowance left.
   */
  async review<T>(token: string, client: string | undefined, ask: () => Promise<ReviewVerdict<T>>): Promise<ReviewVerdict<T>> {
    const problem = tokenProblem(token, { issuers: this.#options.issuers, jwtOnly: this.#options.jwtOnly ?? false, now: this.#clock.now() });
    if (problem !== undefined) {
      this.#options.observe?.('screened');
      return { accepted: false, reason: problem, byGuard: true };
    }
    const key = createHash('sha256').update(token).digest('base64url');
    const refused = this.#refusals.get(key);
    if (refused !== undefined) {
      this.#options.observe?.('refusal-cached');
      return { accepted: false, reason: `refused moments ago: ${refused}` };
    }
    if (client !== undefined) this.#take(client);
    this.#options.observe?.('reviewed');
    const verdict = await ask();
    if (!verdict.accepted) this.#refusals.set(key, verdict.reason);
    return verdict;
  }

  #take(client: string): void {
    const rate = this.#options.rate;
    if (!rate || !this.#buckets) return;
    const now = this.#clock.now();
    const bucket = this.#buckets.get(client) ?? { tokens: rate.burst, at: now };
    const tokens = Math.min(rate.burst, bucket.tokens + ((now - bucket.at) / 1000) * rate.perSecond);
    if (tokens < 1) {
      this.#buckets.set(client, { tokens, at: now });
      this.#options.observe?.('rate-limited');
      throw new ReviewRateLimitedError(Math.max(1, Math.ceil((1 - tokens) / rate.perSecond)));
    }
    this.#buckets.set(client, { tokens: tokens - 1, at: now });
  }
}

/**
 * Why `token` cannot be accepted by this cluster, or undefined when only a review can tell.
 * Tokens that are not JWTs (static tokens, bootstrap tokens, webhook tokens such as EKS's)
 * have no structure to check beyond their characters, so they are always reviewed.
 */
export function tokenProblem(token: string, context: { issuers?: readonly string[] | undefined; jwtOnly: boolean; now: number }): string | undefined {
  if (token.length === 0) return 'the token is empty';
  if (token.length > MAX_TOKEN_BYTES) return `the token is longer than ${MAX_TOKEN_BYTES} bytes`;
  if (!BEARER_TOKEN.test(token)) return 'the token has characters no bearer token has';
  const parts = token.split('.');
  // A JWS header is a JSON object, so its base64url starts with `eyJ` ('{"'); anything else is another kind of token.
  const isJwt = parts.length === 3 && parts[0]?.startsWith('eyJ') === true;
  if (!isJwt) return context.jwtOnly ? 'the token is not a JWT' : undefined;
  const header = decodeJsonObject(parts[0] ?? '');
  const payload = decodeJsonObject(parts[1] ?? '');
  if (!header || typeof header['alg'] !== 'string') return 'the JWT header does not decode';
  if (!payload) return 'the JWT payload does not decode';
  const exp = payload['exp'];
  if (exp !== undefined && (typeof exp !== 'number' || exp * 1000 + EXPIRY_LEEWAY_MS < context.now)) return 'the JWT has expired';
  const iss = payload['iss'];
  if (context.issuers && (typeof iss !== 'string' || !context.issuers.includes(iss))) return `the JWT's issuer ${JSON.stringify(iss)} is not one this cluster accepts`;
  return undefined;
}

function decodeJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The issuers of this cluster's service-account tokens: the one its discovery document names
 * (readable by every service account through the default `system:service-account-issuer-discovery`
 * binding) and the legacy one of Secret-based tokens. Undefined when the document cannot be
 * read: the guard then reviews JWTs of any issuer rather than refuse good ones.
 */
export async function serviceAccountIssuers(kc: KubeConfig, log: Logger): Promise<string[] | undefined> {
  try {
    const answer: unknown = await kc.makeApiClient(WellKnownApi).getServiceAccountIssuerOpenIDConfiguration();
    // client-node types the document as a string, but it decodes the JSON answer it gets.
    const document: unknown = typeof answer === 'string' ? JSON.parse(answer) : answer;
    const issuer = (document as { issuer?: unknown } | null)?.issuer;
    if (typeof issuer === 'string' && issuer.length > 0) return [issuer, LEGACY_SERVICE_ACCOUNT_ISSUER];
    log.warn('the service-account issuer discovery document names no issuer; JWTs of any issuer are sent to TokenReview');
  } catch (error) {
    log.warn({ err: error }, 'could not read the service-account issuer (/.well-known/openid-configuration); JWTs of any issuer are sent to TokenReview');
  }
  return undefined;
}
