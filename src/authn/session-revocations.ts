import type { KubeConfig } from '@kubernetes/client-node';
import { systemClock, type Clock, type Logger } from '../core/index.ts';
import { KubeRevocations } from '../tokens/index.ts';
import type { Session } from './identity.ts';
import { kubeCall } from './kube-reviews.ts';

/** Sessions ended before their expiry (logout), for every replica. */
export interface SessionRevocations {
  isRevoked(session: Session): boolean;
  revoke(session: Session): Promise<void>;
}

/** One process's memory: for unit tests and tools. A server uses KubeSessionRevocations. */
export class MemorySessionRevocations implements SessionRevocations {
  readonly #revoked = new Set<string>();

  isRevoked(session: Session): boolean {
    return this.#revoked.has(session.jti);
  }

  async revoke(session: Session): Promise<void> {
    this.#revoked.add(session.jti);
  }
}

export const SESSION_REVOCATIONS_SECRET = 'meshid-session-revocations';

/**
 * Each entry names a session and when it expires (`<jti>@<exp seconds>`), so a write can
 * drop the entries of sessions that have expired anyway: the list holds only the logouts of
 * the last session lifetime (10 h), ~50 bytes each.
 */
function entry(session: Session): string {
  return `${session.jti}@${Math.floor(session.expiresAt / 1000)}`;
}

function stillLive(nowMs: number): (entry: string) => boolean {
  return (value) => Number(value.slice(value.lastIndexOf('@') + 1)) * 1000 > nowMs;
}

/**
 * Secret `meshid-session-revocations`, held and watched exactly as `user-token-revocations`
 * is (the same KubeRevocations): a logout on one replica reaches the others through their
 * watch within moments, and a check is a set lookup with no Kubernetes call.
 */
export class KubeSessionRevocations implements SessionRevocations {
  readonly #list: KubeRevocations;

  constructor(
    kc: KubeConfig,
    namespace: string,
    log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.#list = new KubeRevocations(kc, namespace, log, { secret: SESSION_REVOCATIONS_SECRET, key: 'session-revocations' });
  }

  start(): Promise<void> {
    return this.#list.start();
  }

  stop(): Promise<void> {
    return this.#list.stop();
  }

  isRevoked(session: Session): boolean {
    return this.#list.isRevoked(entry(session));
  }

  async revoke(session: Session): Promise<void> {
    await kubeCall(() => this.#list.revoke([entry(session)], stillLive(this.clock.now())));
  }
}
