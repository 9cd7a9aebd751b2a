import { createHash } from 'node:crypto';
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import { isKubeUnavailable } from './errors.ts';

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
  /** From the token's pod binding, when it has one. */
  podName?: string;
}

const SA_PREFIX = 'system:serviceaccount:';

/**
 * Proves who a service-account JWT belongs to with a TokenReview that names the audience,
 * so a token minted for anything else (the apiserver, another service) is refused.
 * Refusals are not cached: a fixed clock skew or a just-created account gets a fresh look.
 */
export class ServiceAccountTokenReviewer {
  readonly #api: AuthenticationV1Api;
  readonly #cache: TtlCache<string, ServiceAccountCaller>;

  constructor(
    kc: KubeConfig,
    private readonly audiences: readonly string[] = [CA_AUDIENCE],
    clock: Clock = systemClock,
  ) {
    this.#api = kc.makeApiClient(AuthenticationV1Api);
    this.#cache = new TtlCache(SERVICE_ACCOUNT_REVIEW_TTL_MS, 50_000, clock);
  }

  async review(token: string): Promise<ServiceAccountCaller> {
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = this.#cache.get(key);
    if (cached) return cached;
    let status;
    try {
      status = (await this.#api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...this.audiences] } } })).status;
    } catch (error) {
      if (isKubeUnavailable(error)) throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'Kubernetes is unavailable to review the service-account token', { cause: error });
      throw new MeshidError('ERR_KUBE_REJECTED', 'Kubernetes refused the TokenReview', { cause: error });
    }
    if (!status?.authenticated || !status.user?.username) {
      throw new MeshidError('ERR_UNAUTHENTICATED', `the service-account token was not accepted for audience ${this.audiences.join(', ')}${status?.error ? `: ${status.error}` : ''}`);
    }
    // The apiserver answers the audiences the token is valid for; none of ours means a wrong token.
    if (status.audiences && !status.audiences.some((a) => this.audiences.includes(a))) {
      throw new MeshidError('ERR_UNAUTHENTICATED', `the token is not for audience ${this.audiences.join(', ')}`);
    }
    const username = status.user.username;
    const parts = username.startsWith(SA_PREFIX) ? username.slice(SA_PREFIX.length).split(':') : [];
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new MeshidError('ERR_UNAUTHENTICATED', `"${username}" is not a service account: only workloads get certificates`);
    }
    const podName = status.user.extra?.['authentication.kubernetes.io/pod-name']?.[0];
    const caller: ServiceAccountCaller = { namespace: parts[0], serviceAccount: parts[1], ...(podName ? { podName } : {}) };
    this.#cache.set(key, caller);
    return caller;
  }
}
