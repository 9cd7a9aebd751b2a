import { systemClock, type Clock } from '../core/index.ts';
import { issueChallenge, verifyChallenge } from './challenge.ts';
import { verifyCertificateProof, type CertificateProof, type ClientCaSource } from './client-certificate.ts';
import type { Capabilities, Identity } from './identity.ts';
import type { KubeReviews } from './kube-reviews.ts';
import type { SessionKeySource } from './session-keys.ts';
import type { SessionTokens } from './session-tokens.ts';

/** What a user proves themselves with; the shape kubectl's own credential types take. */
export type LoginCredential = { type: 'bearer'; token: string } | ({ type: 'certificate' } & CertificateProof);

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
  clock?: Clock;
}

/** The allowance shared by callers whose address the HTTP layer did not pass. */
const UNKNOWN_CLIENT = 'unknown';

/** Zero-touch login: check a kubeconfig credential with Kubernetes, then issue a session. */
export class LoginService {
  readonly #deps: LoginDeps;
  readonly #clock: Clock;

  constructor(deps: LoginDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
  }

  challenge(): { challenge: string; expiresAt: number } {
    return issueChallenge(this.#deps.keys, this.#clock);
  }

  /**
   * `client` is the caller's address: TokenReviews are limited per client. Callers whose
   * address is unknown share one allowance, so leaving it out never lifts the limit.
   */
  async login(credential: LoginCredential, client = UNKNOWN_CLIENT): Promise<LoginResult> {
    const user = await this.#authenticate(credential, client);
    const capabilities = await this.#deps.reviews.capabilities(user);
    const issued = await this.#deps.tokens.issue(user, capabilities);
    const wrappedToken = await this.#deps.tokens.wrap(issued.token);
    return { user, capabilities, token: issued.token, wrappedToken, expiresAt: issued.expiresAt };
  }

  async #authenticate(credential: LoginCredential, client: string): Promise<Identity> {
    switch (credential.type) {
      case 'bearer':
        return this.#deps.reviews.reviewToken(credential.token, client);
      case 'certificate':
        verifyChallenge(credential.challenge, this.#deps.keys, this.#clock);
        return verifyCertificateProof(credential, this.#deps.clientCa, this.#clock);
    }
  }
}
