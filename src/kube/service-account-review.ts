import { hash } from 'node:crypto';
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import { isKubeUnavailable } from './errors.ts';
import { TokenReviewGuard, type ReviewVerdict } from './review-guard.ts';

/** The audience Istio's agents ask for, and the one meshid's CA and agent accept by default. */
export const CA_AUDIENCE = 'istio-ca';

/**
 * How long an accepted token's answer is reused. Short, because a deleted pod or service
 * account must stop getting certificates soon; long enough that a burst of CSRs or SDS
 * streams for one workload costs one TokenReview.
 */
export const SERVICE_ACCOUNT_REVIEW_TTL_MS = 10_000;

export interface ServiceAccountCaller {
  namespace: string;
  serviceAccount: string;
  /**
   * The token's pod binding, when it has one (the apiserver puts it in the review's extras).
   * The CA needs it to know which node a node proxy (ztunnel) runs on.
   */
  pod?: { name: string; uid?: string; nodeName?: string };
}

/** The user extras in which the apiserver's service-account authenticator names a bound token's pod and node. */
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

const SA_PREFIX = 'system:serviceaccount:';

/** What a caller is told when its token is refused; the reason goes to the log (the error's cause). */
export const TOKEN_REFUSED_MESSAGE = 'the token was not accepted';

/**
 * Proves who a service-account JWT belongs to with a TokenReview that names the audience,
 * so a token minted for anything else (the apiserver, another service) is refused. The guard
 * refuses what cannot be such a token before asking, remembers refusals for a few seconds,
 * and limits reviews per client. Whatever the reason, the caller hears only
 * TOKEN_REFUSED_MESSAGE: the apiserver's text is for meshid's log.
 */
export class ServiceAccountTokenReviewer {
  readonly #api: AuthenticationV1Api;
  readonly #cache: TtlCache<string, ServiceAccountCaller>;
  readonly #guard: TokenReviewGuard;
  /**
   * Reviews under way, by token hash. Calls that arrive with a token while its review is still
   * out wait for that answer instead of asking again: a workload opening many streams at once,
   * or a burst of CSRs when the cached answer expires, costs one TokenReview, not one per call
   * (without this, 64 calls in flight asked 64 times and ran into the per-client allowance).
   * Entries leave when their review settles, so the map holds at most the reviews in flight.
   */
  readonly #inFlight = new Map<string, Promise<ReviewVerdict<ServiceAccountCaller>>>();

  constructor(
    kc: KubeConfig,
    private readonly audiences: readonly string[] = [CA_AUDIENCE],
    clock: Clock = systemClock,
    guard: TokenReviewGuard = new TokenReviewGuard({ clock, jwtOnly: true }),
  ) {
    this.#api = kc.makeApiClient(AuthenticationV1Api);
    this.#cache = new TtlCache(SERVICE_ACCOUNT_REVIEW_TTL_MS, 50_000, clock);
    this.#guard = guard;
  }

  /** `client` is the caller's address, for the guard's per-client allowance. */
  async review(token: string, client?: string): Promise<ServiceAccountCaller> {
    // One-shot hash: the CA computes this key on every call, and a Hash object costs about twice as much.
    const key = hash('sha256', token, 'base64url');
    const cached = this.#cache.get(key);
    if (cached) return cached;
    let pending = this.#inFlight.get(key);
    if (!pending) {
      const review = this.#guard.review(token, client, () => this.#ask(token));
      pending = review.finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    const verdict = await pending;
    if (!verdict.accepted) throw new MeshidError('ERR_UNAUTHENTICATED', TOKEN_REFUSED_MESSAGE, { cause: new Error(verdict.reason) });
    this.#cache.set(key, verdict.value);
    return verdict.value;
  }

  async #ask(token: string): Promise<ReviewVerdict<ServiceAccountCaller>> {
    let status;
    try {
      status = (await this.#api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...this.audiences] } } })).status;
    } catch (error) {
      if (isKubeUnavailable(error)) throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes is unavailable to review the service-account token', { cause: error });
      throw new MeshidError('ERR_KUBE_REJECTED', 'Kubernetes refused the TokenReview', { cause: error });
    }
    const audiences = this.audiences.join(', ');
    if (!status?.authenticated || !status.user?.username) {
      return { accepted: false, reason: `TokenReview for audience ${audiences} did not authenticate the token${status?.error ? `: ${status.error}` : ''}` };
    }
    // The apiserver answers the audiences the token is valid for; none of ours means a wrong token.
    if (status.audiences && !status.audiences.some((a) => this.audiences.includes(a))) {
      return { accepted: false, reason: `the token is not for audience ${audiences}` };
    }
    const username = status.user.username;
    const parts = username.startsWith(SA_PREFIX) ? username.slice(SA_PREFIX.length).split(':') : [];
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      return { accepted: false, reason: `"${username}" is not a service account: only workloads get certificates` };
    }
    const extra = status.user.extra ?? {};
    const name = extra[POD_NAME_EXTRA]?.[0];
    const uid = extra[POD_UID_EXTRA]?.[0];
    const nodeName = extra[NODE_NAME_EXTRA]?.[0];
    const pod = name ? { name, ...(uid ? { uid } : {}), ...(nodeName ? { nodeName } : {}) } : undefined;
    return { accepted: true, value: { namespace: parts[0], serviceAccount: parts[1], ...(pod ? { pod } : {}) } };
  }
}
