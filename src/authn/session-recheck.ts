import { MeshidError, TtlCache, isMeshidError, systemClock, type Clock, type Logger } from '../core/index.ts';
import type { Session } from './identity.ts';
import type { KubeReviews } from './kube-reviews.ts';

/** Asks again, while a session lives, whether Kubernetes still accepts the credential it came from. */
export interface CredentialRecheck {
  /** Throws ERR_SESSION_CREDENTIAL_REVOKED once Kubernetes no longer accepts the credential. */
  check(session: Session, credential: () => string): Promise<void>;
}

/** For tools and unit tests that verify sessions without a cluster to ask. */
export const NO_RECHECK: CredentialRecheck = { check: async () => undefined };

export interface TokenReviewRecheckOptions {
  /** How long an answer stands before the next request of that session asks again. */
  intervalMs: number;
  /** The longest a session lives: a refusal is remembered that long. */
  sessionTtlMs: number;
  clock?: Clock;
  log: Logger;
}

const MAX_SESSIONS = 10_000;

/**
 * Re-runs TokenReview for the bearer token a session carries, at most once per interval per
 * session (by jti), on whichever replica the session's request reaches: replicas share
 * nothing but Kubernetes, so each asks for itself, and the cost is one review per session per
 * interval per replica. Concurrent requests of one session share one review.
 *
 * A "no" ends the session for good on this replica. While the apiserver is unreachable the
 * last answer stands (the session was accepted at login or at the last check), as the README's
 * "When Kubernetes is away" promises for sessions; the first request that finds Kubernetes
 * away waits for it (the 10 s bound) and the replica then asks nothing for one interval, so an
 * outage costs one slow request per interval, not one per session.
 */
export class TokenReviewRecheck implements CredentialRecheck {
  readonly #reviews: Pick<KubeReviews, 'reviewToken'>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #interval: number;
  /** Sessions whose credential Kubernetes accepted within the interval. */
  readonly #accepted: TtlCache<string, true>;
  /** Sessions whose credential Kubernetes refused: refused until they would have expired. */
  readonly #revoked: TtlCache<string, true>;
  readonly #pending = new Map<string, Promise<void>>();
  #kubeAwayUntil = 0;

  constructor(reviews: Pick<KubeReviews, 'reviewToken'>, options: TokenReviewRecheckOptions) {
    this.#reviews = reviews;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
    this.#interval = options.intervalMs;
    this.#accepted = new TtlCache(options.intervalMs, MAX_SESSIONS, this.#clock);
    this.#revoked = new TtlCache(options.sessionTtlMs, MAX_SESSIONS, this.#clock);
  }

  async check(session: Session, credential: () => string): Promise<void> {
    if (this.#revoked.get(session.jti)) throw revoked();
    if (this.#accepted.get(session.jti) || this.#kubeAwayUntil > this.#clock.now()) return;
    let pending = this.#pending.get(session.jti);
    if (!pending) {
      pending = this.#review(session, credential()).finally(() => this.#pending.delete(session.jti));
      this.#pending.set(session.jti, pending);
    }
    await pending;
  }

  async #review(session: Session, token: string): Promise<void> {
    try {
      const user = await this.#reviews.reviewToken(token);
      // The same token never becomes someone else; if it ever did, the session is not theirs.
      if (user.name !== session.user.name) throw new MeshidError('ERR_LOGIN_FAILED', `the credential now authenticates as ${user.name}`);
      this.#accepted.set(session.jti, true);
    } catch (error) {
      if (isMeshidError(error, 'ERR_KUBE_UNAVAILABLE')) {
        this.#kubeAwayUntil = this.#clock.now() + this.#interval;
        this.#log.warn({ jti: session.jti }, 'Kubernetes is unreachable: sessions keep their last TokenReview answer until it answers again');
        return;
      }
      if (!isMeshidError(error, 'ERR_LOGIN_FAILED')) throw error;
      this.#revoked.set(session.jti, true);
      this.#log.info({ user: session.user.name, jti: session.jti }, 'session ended: Kubernetes no longer accepts the credential it came from');
      throw revoked();
    }
  }
}

function revoked(): MeshidError {
  return new MeshidError('ERR_SESSION_CREDENTIAL_REVOKED', 'Kubernetes no longer accepts the credential this session came from', {
    hint: 'Log in again with a credential that works (`kubectl auth whoami` shows whether it does).',
  });
}
