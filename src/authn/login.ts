import { MeshidError, systemClock, type Clock } from '../core/index.ts';
import { issueChallenge, verifyChallenge, type IssuedChallenge } from './challenge.ts';
import { certificateNotAfter, verifyCertificateProof, type CertificateProof, type ClientCaSource } from './client-certificate.ts';
import { bearerExpiry, earliest } from './credential-expiry.ts';
import type { Capabilities, Identity } from './identity.ts';
import type { KubeReviews } from './kube-reviews.ts';
import type { SessionKeySource } from './session-keys.ts';
import { DEFAULT_AUDIENCE, type SessionTokens } from './session-tokens.ts';
import { MemoryUsedOnce, type UsedOnce } from './used-once.ts';

/**
 * What a user proves themselves with; the shape kubectl's own credential types take.
 * `expiresAt` is the client's word for when the credential ends (an exec plugin's
 * `expirationTimestamp`): it can only shorten the session.
 */
export type LoginCredential = ({ type: 'bearer'; token: string } | ({ type: 'certificate' } & CertificateProof)) & { expiresAt?: number | undefined };

export interface LoginResult {
  user: Identity;
  capabilities: Capabilities;
  token: string;
  wrappedToken: string;
  expiresAt: number;
}

export interface LoginDeps {
  reviews: KubeReviews;
  clientCa: ClientCaSource;
  tokens: SessionTokens;
  keys: SessionKeySource;
  /** Records each challenge's use, so a proof is accepted once, on one replica. Default: this process only. */
  usedOnce?: UsedOnce;
  /** The installation challenges are for (`installationAudience`). */
  audience?: string;
  clock?: Clock;
}

/** The allowance shared by callers whose address the HTTP layer did not pass. */
const UNKNOWN_CLIENT = 'unknown';

/** Zero-touch login: check a kubeconfig credential with Kubernetes, then issue a session. */
export class LoginService {
  readonly #deps: LoginDeps;
  readonly #clock: Clock;
  readonly #usedOnce: UsedOnce;
  readonly #audience: string;

  constructor(deps: LoginDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#usedOnce = deps.usedOnce ?? new MemoryUsedOnce(this.#clock);
    this.#audience = deps.audience ?? DEFAULT_AUDIENCE;
  }

  challenge(): IssuedChallenge {
    return issueChallenge(this.#deps.keys, this.#clock, this.#audience);
  }

  /**
   * `client` is the caller's address: TokenReviews are limited per client. Callers whose
   * address is unknown share one allowance, so leaving it out never lifts the limit.
   */
  async login(credential: LoginCredential, client = UNKNOWN_CLIENT): Promise<LoginResult> {
    const { user, notAfter } = await this.#authenticate(credential, client);
    // A session never outlives the credential it came from.
    const ends = earliest(notAfter, credential.expiresAt);
    if (ends !== undefined && ends <= this.#clock.now()) throw new MeshidError('ERR_LOGIN_FAILED', 'the credential has expired');
    const capabilities = await this.#deps.reviews.capabilities(user);
    const issued = await this.#deps.tokens.issue(user, capabilities, { notAfter: ends, ...(credential.type === 'bearer' ? { bearer: credential.token } : {}) });
    const wrappedToken = await this.#deps.tokens.wrap(issued.token);
    return { user, capabilities, token: issued.token, wrappedToken, expiresAt: issued.expiresAt };
  }

  async #authenticate(credential: LoginCredential, client: string): Promise<{ user: Identity; notAfter: number | undefined }> {
    switch (credential.type) {
      case 'bearer':
        return { user: await this.#deps.reviews.reviewToken(credential.token, client), notAfter: bearerExpiry(credential.token) };
      case 'certificate': {
        const challenge = verifyChallenge(credential.challenge, this.#deps.keys, this.#clock, this.#audience);
        const user = await verifyCertificateProof(credential, this.#deps.clientCa, this.#clock);
        // Recorded only once the proof verified, so a garbage proof costs no Kubernetes write.
        if (!(await this.#usedOnce.claim('challenge', challenge.id, challenge.expiresAt))) {
          throw new MeshidError('ERR_CHALLENGE_INVALID', 'login challenge was already used; ask for a new one');
        }
        return { user, notAfter: certificateNotAfter(credential.certificate) };
      }
    }
  }
}
