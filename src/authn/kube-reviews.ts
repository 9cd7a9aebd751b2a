import { createHash } from 'node:crypto';
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import { TokenReviewGuard, impersonableExtra, isKubeUnavailable, type ReviewVerdict } from '../kube/index.ts';
import { LOGIN_CAPABILITIES } from '../contract/index.ts';
import type { Capabilities, Identity } from './identity.ts';

/** How long a positive TokenReview or a SubjectAccessReview answer is reused. */
export const REVIEW_CACHE_TTL_MS = 10_000;

/** The two questions login asks Kubernetes; an interface so unit tests can answer them. */
export interface KubeReviews {
  /**
   * `client` is the caller's address, for the per-client allowance of TokenReviews; meshid's
   * own re-checks pass none and are not limited.
   */
  reviewToken(token: string, client?: string): Promise<Identity>;
  capabilities(user: Identity): Promise<Capabilities>;
}

/**
 * TokenReview and SubjectAccessReview against the real apiserver, cached for a few seconds
 * (keyed by a hash of the token, never the token itself) so that a burst of logins does
 * not become a burst of reviews. The guard refuses what cannot be a token of this cluster,
 * remembers refusals briefly and limits reviews per client.
 */
export class ApiServerReviews implements KubeReviews {
  readonly #authn: AuthenticationV1Api;
  readonly #authz: AuthorizationV1Api;
  readonly #tokens: TtlCache<string, Identity>;
  readonly #caps: TtlCache<string, Capabilities>;
  readonly #guard: TokenReviewGuard;

  constructor(kc: KubeConfig, clock: Clock = systemClock, guard: TokenReviewGuard = new TokenReviewGuard({ clock })) {
    this.#guard = guard;
    this.#authn = kc.makeApiClient(AuthenticationV1Api);
    this.#authz = kc.makeApiClient(AuthorizationV1Api);
    this.#tokens = new TtlCache(REVIEW_CACHE_TTL_MS, 10_000, clock);
    this.#caps = new TtlCache(REVIEW_CACHE_TTL_MS, 10_000, clock);
  }

  async reviewToken(token: string, client?: string): Promise<Identity> {
    const cacheKey = createHash('sha256').update(token).digest('base64url');
    const cached = this.#tokens.get(cacheKey);
    if (cached) return cached;
    const verdict = await this.#guard.review(token, client, () => this.#ask(token));
    if (!verdict.accepted) {
      // The guard's reasons are meshid's own words; the apiserver's are not repeated to the caller.
      throw new MeshidError('ERR_LOGIN_FAILED', verdict.byGuard ? `the token cannot be one of this cluster's: ${verdict.reason}` : 'Kubernetes did not accept the token', {
        hint: 'Check that `kubectl auth whoami` works with the same kubeconfig.',
        cause: new Error(verdict.reason),
      });
    }
    this.#tokens.set(cacheKey, verdict.value);
    return verdict.value;
  }

  async #ask(token: string): Promise<ReviewVerdict<Identity>> {
    const review = await kubeCall(() =>
      this.#authn.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } }),
    );
    const user = review.status?.user;
    if (!review.status?.authenticated || !user?.username) return { accepted: false, reason: review.status?.error ?? 'not authenticated' };
    // A session whose extras meshid may not impersonate could make no call at all: refused here, by name.
    const extra = impersonableExtra(user.extra);
    return {
      accepted: true,
      value: { name: user.username, groups: user.groups ?? [], ...(user.uid ? { uid: user.uid } : {}), ...(extra ? { extra } : {}) },
    };
  }

  async capabilities(user: Identity): Promise<Capabilities> {
    const cacheKey = JSON.stringify([user.name, user.uid, [...user.groups].sort(), user.extra]);
    const cached = this.#caps.get(cacheKey);
    if (cached) return cached;
    const answers = await Promise.all(
      LOGIN_CAPABILITIES.map(async (check) => {
        const review = await kubeCall(() =>
          this.#authz.createSubjectAccessReview({
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SubjectAccessReview',
              spec: {
                user: user.name,
                groups: user.groups,
                ...(user.uid ? { uid: user.uid } : {}),
                ...(user.extra ? { extra: user.extra } : {}),
                resourceAttributes: { group: check.group, resource: check.resource, verb: check.verb },
              },
            },
          }),
        );
        return [check.key, review.status?.allowed === true] as const;
      }),
    );
    const caps = Object.fromEntries(answers);
    this.#caps.set(cacheKey, caps);
    return caps;
  }
}

/** Maps an unreachable or failing apiserver to ERR_KUBE_UNAVAILABLE (503), anything else passes. */
export async function kubeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isKubeUnavailable(error)) throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes is unavailable', { cause: error });
    throw new MeshidError('ERR_KUBE_REJECTED', 'Kubernetes refused a request meshid needs', { cause: error });
  }
}
