import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { MeshidError, type Logger } from '../core/index.ts';
import { SecretClient, decodeSecret, isConflict, watchSecrets, type SecretWatch } from '../kube/index.ts';
import type { Revocations } from './validator.ts';

export const REVOCATIONS_SECRET = 'user-token-revocations';
const VALUE = 'value';

/** Which Secret holds a list: user tokens' here; sessions reuse the same machinery for theirs. */
export interface RevocationList {
  secret: string;
  /** Value of the meshid.io/key label. */
  key: string;
}

export const USER_TOKEN_REVOCATIONS: RevocationList = { secret: REVOCATIONS_SECRET, key: 'user-token-revocations' };

export function parseRevocations(value: string | undefined): Set<string> {
  return new Set((value ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

/**
 * Secret `user-token-revocations`: comma-separated `jti` values. Every replica watches it
 * (by name, since people also edit it with kubectl), so a check costs a set lookup and no
 * Kubernetes call.
 */
export class KubeRevocations implements Revocations {
  readonly #secrets: SecretClient;
  #revoked = new Set<string>();
  #watch: SecretWatch | undefined;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly log: Logger,
    private readonly target: RevocationList = USER_TOKEN_REVOCATIONS,
  ) {
    this.#secrets = new SecretClient(kc);
  }

  async start(): Promise<void> {
    this.#watch = await watchSecrets(this.kc, this.namespace, { name: this.target.secret }, {
      onUpsert: (secret: V1Secret) => (this.#revoked = parseRevocations(decodeSecret(secret)[VALUE])),
      onDelete: () => (this.#revoked = new Set()),
    }, this.log);
  }

  async stop(): Promise<void> {
    await this.#watch?.stop();
  }

  isRevoked(jti: string): boolean {
    return this.#revoked.has(jti);
  }

  list(): string[] {
    return [...this.#revoked];
  }

  /**
   * Adds ids to the list; concurrent writers are merged, never lost (optimistic concurrency).
   * Entries `keep` says no to are dropped in the same write (those past any use).
   */
  async revoke(jtis: string[], keep: (entry: string) => boolean = () => true): Promise<void> {
    const spec = { namespace: this.namespace, name: this.target.secret, key: this.target.key };
    for (let attempt = 0; attempt < 5; attempt++) {
      const { secret, created } = await this.#secrets.createIfAbsent(spec, () => ({ [VALUE]: jtis.join(',') }));
      if (created) return;
      const merged = new Set([...parseRevocations(decodeSecret(secret)[VALUE])].filter(keep));
      for (const jti of jtis) merged.add(jti);
      try {
        await this.#secrets.replace(spec, secret.metadata?.resourceVersion ?? '', { [VALUE]: [...merged].join(',') });
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    throw new MeshidError('ERR_KUBE_UNAVAILABLE', `could not update Secret ${this.target.secret}: it kept changing underneath`);
  }
}
