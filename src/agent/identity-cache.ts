import { createPublicKey } from 'node:crypto';
import { MeshidError, isMeshidError, type Clock, type Logger } from '../core/index.ts';
import { createKeyAndCsr, type KeyType } from './csr.ts';
import { spiffeId, type CertificateSigner, type WorkloadIdentity } from '../contract/index.ts';
import { identityKey } from './identity.ts';
import { readLeaf, type LeafFields } from '../pki/index.ts';
import { DEFAULT_RETRY, renewalDelay, retryDelay, type RetryPolicy } from './renewal.ts';
import type { Scheduler } from './scheduler.ts';
import { workloadSecret, type PackedSecret } from './secrets.ts';

/** One certificate and key for one identity, packed once for every stream that serves it. */
export interface IssuedCertificate {
  readonly secret: PackedSecret;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Increases with every issue in this process: the newer of two is the larger. */
  readonly sequence: number;
}

/** A stream that serves `default` for one identity: it hears of new certificates and lends its token. */
export interface CertificateSubscriber {
  /** The reviewed token the stream opened with; a renewal presents it to the CA. */
  readonly token: string;
  certificateIssued(certificate: IssuedCertificate): void;
  /** The certificate cannot be kept: it expired unrenewed, or the CA refused this subscriber's token. */
  certificateLost(error: MeshidError): void;
}

export interface CertificateCacheOptions {
  signer: CertificateSigner;
  trustDomain: string;
  keyType: KeyType;
  ttlSeconds: number;
  clock: Clock;
  scheduler: Scheduler;
  log: Logger;
  retry?: RetryPolicy;
  random?: () => number;
  /** Renewals run at most this many at a time, so a forced rotation does not flood the CA. */
  maxConcurrentRenewals?: number;
}

export interface CertificateCacheStats {
  identities: number;
  subscribers: number;
  csrs: number;
  renewals: number;
  failures: number;
}

interface Entry {
  readonly key: string;
  readonly identity: WorkloadIdentity;
  current: IssuedCertificate | undefined;
  inflight: Promise<IssuedCertificate> | undefined;
  /** The token the in-flight CSR presents, to blame a refusal on the right stream. */
  inflightToken: string | undefined;
  /** In subscription order: the last is the newest, whose token is the freshest. */
  readonly subscribers: Set<CertificateSubscriber>;
  cancelTimer: (() => void) | undefined;
  failures: number;
}

const CREDENTIAL_CODES = new Set(['ERR_SDS_CREDENTIAL', 'ERR_UNAUTHENTICATED']);

/**
 * The longest a CSR may take, whatever the signer. A signer that never answers would
 * otherwise hold every stream of the identity, and its renewals, on one pending promise.
 */
const SIGN_TIMEOUT_MS = 30_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MeshidError('ERR_CA_UNAVAILABLE', `the CA did not answer within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Certificates by workload identity (namespace and service account). Every stream and fetch
 * of one identity shares one key and certificate, and the first requests of an identity make
 * exactly one CSR between them.
 *
 * Sharing by identity is safe only because nothing reaches this cache without a token that
 * the CallerReviewer has just proven to be that identity: the SDS server reviews every new
 * stream's and every fetch's token before it asks here. Keep it that way; an unreviewed
 * caller that could name an identity would get that identity's key.
 */
export class CertificateCache {
  readonly #entries = new Map<string, Entry>();
  readonly #options: Required<Omit<CertificateCacheOptions, 'random'>> & { random: () => number };
  #sequence = 0;
  #closed = false;
  #csrs = 0;
  #renewals = 0;
  #failures = 0;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(options: CertificateCacheOptions) {
    this.#options = { retry: DEFAULT_RETRY, random: Math.random, maxConcurrentRenewals: 32, ...options };
  }

  /**
   * The identity's certificate: the cached one while it is valid, else a new one made with
   * `token` (joined by every concurrent caller of the identity).
   */
  async certificate(identity: WorkloadIdentity, token: string): Promise<IssuedCertificate> {
    const entry = this.#entry(identity);
    const current = entry.current;
    if (current && this.#options.clock.now() < current.notAfter) return current;
    try {
      return await this.#issue(entry, token);
    } catch (error) {
      this.#dropIfIdle(entry);
      throw error;
    }
  }

  /** Hears of every new certificate of the identity until the answered function is called. */
  subscribe(identity: WorkloadIdentity, subscriber: CertificateSubscriber): () => void {
    const entry = this.#entry(identity);
    entry.subscribers.add(subscriber);
    return () => {
      entry.subscribers.delete(subscriber);
      // An unused certificate is dropped at its renewal time, not now: a client that
      // reconnects (Envoy's hot restart, a blip) still finds it.
      this.#dropIfIdle(entry);
    };
  }

  /**
   * Renews every identity that has a stream now, with a new key, and drops the rest: after a
   * CA rotation or a suspected key compromise, without waiting for half-lives.
   */
  async renewAll(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((entry) => this.#renew(entry)));
  }

  stats(): CertificateCacheStats {
    let subscribers = 0;
    for (const entry of this.#entries.values()) subscribers += entry.subscribers.size;
    return { identities: this.#entries.size, subscribers, csrs: this.#csrs, renewals: this.#renewals, failures: this.#failures };
  }

  close(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) entry.cancelTimer?.();
    this.#entries.clear();
    this.#queue.length = 0;
  }

  #entry(identity: WorkloadIdentity): Entry {
    const key = identityKey(identity);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { key, identity, current: undefined, inflight: undefined, inflightToken: undefined, subscribers: new Set(), cancelTimer: undefined, failures: 0 };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  #dropIfIdle(entry: Entry): void {
    if (entry.subscribers.size === 0 && !entry.current && !entry.inflight) this.#drop(entry);
  }

  #drop(entry: Entry): void {
    entry.cancelTimer?.();
    entry.cancelTimer = undefined;
    if (this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key);
  }

  #issue(entry: Entry, token: string): Promise<IssuedCertificate> {
    if (!entry.inflight) {
      entry.inflightToken = token;
      entry.inflight = this.#sign(entry, token).finally(() => {
        entry.inflight = undefined;
        entry.inflightToken = undefined;
      });
    }
    return entry.inflight;
  }

  async #sign(entry: Entry, token: string): Promise<IssuedCertificate> {
    const { signer, trustDomain, keyType, ttlSeconds, clock, log } = this.#options;
    const uri = spiffeId({ trustDomain, ...entry.identity });
    const { keyPem, csrPem, spki } = await createKeyAndCsr(uri, keyType);
    this.#csrs += 1;
    const chain = await withTimeout(signer.sign(csrPem, token, ttlSeconds), SIGN_TIMEOUT_MS);
    const leaf = checkLeaf(chain, uri, spki, clock.now());
    const issued: IssuedCertificate = { secret: workloadSecret(chain, keyPem), ...leaf, sequence: ++this.#sequence };
    if (this.#closed || this.#entries.get(entry.key) !== entry) return issued;
    entry.current = issued;
    entry.failures = 0;
    // CAs backdate notBefore against clock skew (meshid's and Istio's by a minute). The life
    // the workload gets starts now: measured from a backdated notBefore, "half" would come a
    // minute early, and for a TTL under about two minutes it lies in the past (a renewal
    // every 100 ms).
    const now = clock.now();
    this.#schedule(entry, renewalDelay(Math.max(issued.notBefore, now), issued.notAfter, now, this.#options.random));
    log.info({ namespace: entry.identity.namespace, serviceAccount: entry.identity.serviceAccount, serial: issued.serial, notAfter: new Date(issued.notAfter).toISOString() }, 'issued a workload certificate');
    for (const subscriber of [...entry.subscribers]) subscriber.certificateIssued(issued);
    return issued;
  }

  #schedule(entry: Entry, delayMs: number): void {
    entry.cancelTimer?.();
    entry.cancelTimer = this.#options.scheduler.setTimer(() => {
      entry.cancelTimer = undefined;
      void this.#renew(entry);
    }, delayMs);
  }

  async #renew(entry: Entry): Promise<void> {
    entry.cancelTimer?.();
    entry.cancelTimer = undefined;
    if (this.#closed || this.#entries.get(entry.key) !== entry) return;
    // Renewing needs a token, and only an open stream lends one; with none, the certificate
    // has no one to serve, so it goes rather than being renewed for no one.
    if (entry.subscribers.size === 0) {
      this.#drop(entry);
      return;
    }
    if (entry.current && this.#options.clock.now() >= entry.current.notAfter) {
      this.#expire(entry);
      return;
    }
    await this.#limited(async () => {
      let lastError: unknown;
      // Newest first: its token is the least likely to have expired. A token the CA refuses
      // ends its own stream (the client reconnects with a fresh one), and the next is tried.
      for (const subscriber of [...entry.subscribers].reverse()) {
        if (this.#closed || this.#entries.get(entry.key) !== entry || !entry.subscribers.has(subscriber)) continue;
        // Joining another caller's CSR: a refusal there is about that caller's token.
        const joined = entry.inflight !== undefined && entry.inflightToken !== subscriber.token;
        try {
          await this.#issue(entry, subscriber.token);
          this.#renewals += 1;
          return;
        } catch (error) {
          lastError = error;
          if (!joined && isMeshidError(error) && CREDENTIAL_CODES.has(error.code)) {
            subscriber.certificateLost(error);
            continue;
          }
          break;
        }
      }
      if (entry.subscribers.size === 0) this.#drop(entry);
      else this.#failed(entry, lastError);
    });
  }

  #failed(entry: Entry, error: unknown): void {
    if (this.#closed || this.#entries.get(entry.key) !== entry) return;
    // Without a certificate there is nothing to keep serving: the streams waiting for their
    // first one have had the error already, and the next request starts afresh.
    if (!entry.current) {
      this.#dropIfIdle(entry);
      return;
    }
    this.#failures += 1;
    entry.failures += 1;
    const now = this.#options.clock.now();
    const notAfter = entry.current.notAfter;
    const delay = Math.min(retryDelay(entry.failures, this.#options.retry, this.#options.random), Math.max(0, notAfter - now));
    this.#options.log.warn(
      { namespace: entry.identity.namespace, serviceAccount: entry.identity.serviceAccount, code: isMeshidError(error) ? error.code : undefined, err: safeMessage(error), retryInMs: Math.round(delay) },
      'could not renew a workload certificate; still serving the current one until it expires',
    );
    this.#schedule(entry, delay);
  }

  #expire(entry: Entry): void {
    this.#options.log.error({ namespace: entry.identity.namespace, serviceAccount: entry.identity.serviceAccount }, 'a workload certificate expired before it could be renewed');
    const error = new MeshidError('ERR_CA_UNAVAILABLE', 'the workload certificate expired and the CA could not renew it');
    this.#drop(entry);
    for (const subscriber of [...entry.subscribers]) subscriber.certificateLost(error);
  }

  async #limited(task: () => Promise<void>): Promise<void> {
    if (this.#running >= this.#options.maxConcurrentRenewals) await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running += 1;
    try {
      await task();
    } finally {
      this.#running -= 1;
      this.#queue.shift()?.();
    }
  }
}

/**
 * Checks the CA's answer before it is cached for an identity: the leaf must hold our key and
 * the identity's SPIFFE URI, so a confused or hostile CA cannot make the agent hand one
 * workload another's certificate.
 */
function checkLeaf(chain: string[], uri: string, spki: Buffer, now: number): { serial: string; notBefore: number; notAfter: number } {
  let leaf: LeafFields;
  try {
    leaf = readLeaf(chain[0] ?? '');
  } catch (error) {
    throw new MeshidError('ERR_CA_UNAVAILABLE', `the CA answered a leaf certificate that does not parse (${safeMessage(error)})`, { cause: error });
  }
  // Byte equality is the fast path; a CA may re-encode the key, so fall back to comparing keys.
  if (!leaf.spki.equals(spki) && !samePublicKey(leaf.spki, spki)) throw new MeshidError('ERR_CSR_IDENTITY', 'the CA signed a different key than the one in the CSR');
  if (!leaf.uris.includes(uri)) throw new MeshidError('ERR_CSR_IDENTITY', `the CA issued a certificate without the identity ${uri}`);
  if (!(leaf.notAfter > now)) throw new MeshidError('ERR_CA_UNAVAILABLE', 'the CA issued a certificate that has already expired; check the clocks');
  return { serial: leaf.serial, notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

function samePublicKey(a: Buffer, b: Buffer): boolean {
  try {
    return createPublicKey({ key: a, format: 'der', type: 'spki' }).equals(createPublicKey({ key: b, format: 'der', type: 'spki' }));
  } catch {
    return false;
  }
}

/** An error's message for a log line; errors here never carry keys or tokens. */
export function safeMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
