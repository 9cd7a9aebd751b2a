import { createHash } from 'node:crypto';
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import { isKubeUnavailable } from '../kube/index.ts';
import { CAPABILITY_CHECKS } from './capabilities.ts';
import type { Capabilities, Identity } from './identity.ts';

/** How long a positive TokenReview or a SubjectAccessReview answer is reused. */
export const REVIEW_CACHE_TTL_MS = 10_000;

/** The two questions login asks Kubernetes; an interface so unit tests can answer them. */
export interface KubeReviews {
  reviewToken(token: string): Promise<Identity>;
  capabilities(user: Identity): Promise<Capabilities>;
}

/**
 * TokenReview and SubjectAccessReview against the real apiserver, cached for a few seconds
 * (keyed by a hash of the token, never the token itself) so that a burst of logins does
 * not become a burst of reviews.
 */
export class ApiServerReviews implements KubeReviews {
  readonly #authn: AuthenticationV1Api;
  readonly #authz: AuthorizationV1Api;
  readonly #tokens: TtlCache<string, Identity>;
  readonly #caps: TtlCache<string, Capabilities>;

  constructor(kc: KubeConfig, clock: Clock = systemClock) {
    this.#authn = kc.makeApiClient(AuthenticationV1Api);
    this.#authz = kc.makeApiClient(AuthorizationV1Api);
    this.#tokens = new TtlCache(REVIEW_CACHE_TTL_MS, 10_000, clock);
    this.#caps = new TtlCache(REVIEW_CACHE_TTL_MS, 10_000, clock);
  }

  async reviewToken(token: string): Promise<Identity> {
    const cacheKey = createHash('sha256').update(token).digest('base64url');
    const cached = this.#tokens.get(cacheKey);
    if (cached) return cached;
    const review = await kubeCall(() =>
      this.#authn.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } }),
    );
    const user = review.status?.user;
    if (!review.status?.authenticated || !user?.username) {
      throw new MeshidError('ERR_LOGIN_FAILED', 'Kubernetes did not accept the token', {
        hint: 'Check that `kubectl auth whoami` works with the same kubeconfig.',
      });
    }
    const identity: Identity = {
      name: user.username,
      groups: user.groups ?? [],
      ...(user.uid ? { uid: user.uid } : {}),
      ...(user.extra && Object.keys(user.extra).length > 0 ? { extra: user.extra } : {}),
    };
    this.#tokens.set(cacheKey, identity);
    return identity;
  }

  async capabilities(user: Identity): Promise<Capabilities> {
    const cacheKey = JSON.stringify([user.name, user.uid, [...user.groups].sort(), user.extra]);
    const cached = this.#caps.get(cacheKey);
    if (cached) return cached;
    const answers = await Promise.all(
      CAPABILITY_CHECKS.map(async (check) => {
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
