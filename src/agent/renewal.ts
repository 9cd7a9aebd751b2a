/** When to renew, and how long to wait after a failure: pure functions of time and chance. */

export interface RetryPolicy {
  /** First wait after a failed renewal. */
  initialMs: number;
  /** The waits double up to this bound. */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialMs: 1_000, maxMs: 60_000 };

// Never spin: even a certificate already past half its life waits this long to renew.
const MIN_DELAY_MS = 100;

/**
 * Renew at about half the lifetime, with ±10% jitter on that half, so that identities
 * issued together (a node's restart) do not all come back to the CA in the same second.
 * Half leaves the other half for a CA outage to pass before anything expires.
 */
export function renewalDelay(notBefore: number, notAfter: number, now: number, random: () => number = Math.random): number {
  const half = (notAfter - notBefore) / 2;
  const at = notBefore + half * (0.9 + 0.2 * random());
  return Math.max(MIN_DELAY_MS, at - now);
}

/**
 * The wait after `failures` consecutive failures (1, 2, …): exponential, bounded by
 * `maxMs`, with ±20% jitter so that the identities a CA outage hit do not retry in lockstep.
 */
export function retryDelay(failures: number, policy: RetryPolicy = DEFAULT_RETRY, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.max(MIN_DELAY_MS, Math.min(policy.maxMs, base * (0.8 + 0.4 * random())));
}
