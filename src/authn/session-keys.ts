import { hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { z } from 'zod';
import { MeshidError, systemClock, type Clock, type Logger } from '../core/index.ts';
import { SecretClient, decodeSecret, isConflict, watchSecrets, type SecretSelector, type SecretSpec, type SecretWatch } from '../kube/index.ts';

export const SESSION_SECRET_NAME = 'meshid-authentication';
const SESSION_KEY_LABEL = 'session';
/** One Secret, watched by its name: found even when someone re-created it without meshid's labels. */
export const SESSION_KEYS_SELECTOR: SecretSelector = { name: SESSION_SECRET_NAME };

export interface SessionKey {
  kid: string;
  secret: Uint8Array;
  /** When set, the key only verifies (it was rotated out) and is dropped after this time. */
  retireAt?: number;
}

/** Read side of the session keys; the first key signs, every unretired key verifies. */
export interface SessionKeySource {
  current(): SessionKey;
  find(kid: string): SessionKey | undefined;
}

/**
 * A key for one purpose, derived from a session key: each use (challenge MACs, wrapped
 * tokens, the credential a session carries) gets its own `info`, so no two share key bytes.
 */
export function deriveKey(key: SessionKey, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key.secret, new Uint8Array(0), info, 32));
}

export function newSessionKey(): SessionKey {
  return { kid: randomUUID(), secret: randomBytes(32) };
}

/** A fixed set of keys, for unit tests and for tools that run without a cluster. */
export class StaticSessionKeys implements SessionKeySource {
  constructor(private readonly keys: SessionKey[] = [newSessionKey()]) {}

  current(): SessionKey {
    const key = this.keys[0];
    if (!key) throw new MeshidError('ERR_SESSION_KEY_UNAVAILABLE', 'no session key');
    return key;
  }

  find(kid: string): SessionKey | undefined {
    return this.keys.find((k) => k.kid === kid);
  }
}

/**
 * Secret `meshid-authentication` holds one JSON list under this key: `[{kid, key, retireAt?}]`.
 * This module is its only reader and writer (servers, recovery, tools).
 */
const DATA_KEY = 'keys.json';

/** A key is 32 bytes in unpadded base64url: exactly 43 characters of that alphabet. */
const StoredKey = z.object({ kid: z.string().min(1), key: z.string().regex(/^[A-Za-z0-9_-]{43}$/), retireAt: z.iso.datetime().optional() });
const StoredKeys = z.array(StoredKey).min(1);

export function serializeKeys(keys: SessionKey[]): string {
  return JSON.stringify(
    keys.map((k) => ({
      kid: k.kid,
      key: Buffer.from(k.secret).toString('base64url'),
      ...(k.retireAt === undefined ? {} : { retireAt: new Date(k.retireAt).toISOString() }),
    })),
  );
}

const fromStored = (k: z.infer<typeof StoredKey>): SessionKey => ({
  kid: k.kid,
  secret: Buffer.from(k.key, 'base64url'),
  ...(k.retireAt === undefined ? {} : { retireAt: Date.parse(k.retireAt) }),
});

/** What a server trusts: the whole list or nothing (it fails closed on a bad Secret). */
export function parseKeys(text: string | undefined): SessionKey[] {
  return StoredKeys.parse(JSON.parse(text ?? 'null')).map(fromStored);
}

/**
 * Every well-formed key in the stored text, for tools that inspect the Secret (recovery's
 * plan and checks): never throws; an unreadable Secret holds none.
 */
export function readableKeys(text: string | undefined): SessionKey[] {
  let list: unknown;
  try {
    list = JSON.parse(text ?? '[]');
  } catch {
    return [];
  }
  return Array.isArray(list) ? list.flatMap((entry) => {
    const parsed = StoredKey.safeParse(entry);
    return parsed.success ? [fromStored(parsed.data)] : [];
  }) : [];
}

/** The keys Secret `meshid-authentication` holds now; undefined when there is no such Secret. */
export async function readStoredSessionKeys(kc: KubeConfig, namespace: string): Promise<SessionKey[] | undefined> {
  const secret = await new SecretClient(kc).read(namespace, SESSION_SECRET_NAME);
  return secret ? readableKeys(decodeSecret(secret)[DATA_KEY]) : undefined;
}

export interface KubeSessionKeysOptions {
  namespace: string;
  /** How long a rotated-out key keeps verifying: the lifetime of the sessions it signed. */
  sessionTtlMs: number;
  clock?: Clock;
  log: Logger;
}

/**
 * Session keys held in Secret `meshid-authentication`. Every replica watches it; whichever
 * replica first finds it missing creates it (create-if-absent), so exactly one key results.
 */
export class KubeSessionKeys implements SessionKeySource {
  readonly #secrets: SecretClient;
  readonly #spec: SecretSpec;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #ttl: number;
  #keys: SessionKey[] = [];
  #watch: SecretWatch | undefined;
  /** Counts watch deliveries, so a slower direct read cannot overwrite a newer watched state. */
  #watchEvents = 0;

  constructor(
    private readonly kc: KubeConfig,
    options: KubeSessionKeysOptions,
  ) {
    this.#secrets = new SecretClient(kc);
    this.#spec = { namespace: options.namespace, name: SESSION_SECRET_NAME, key: SESSION_KEY_LABEL };
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
    this.#ttl = options.sessionTtlMs;
  }

  async start(): Promise<void> {
    await this.#ensure();
    this.#watch = await watchSecrets(
      this.kc,
      this.#spec.namespace,
      SESSION_KEYS_SELECTOR,
      {
        onUpsert: (secret) => {
          this.#watchEvents++;
          this.#load(secret);
        },
        onDelete: () => {
          this.#watchEvents++;
          // Refuse every session at once, then put a fresh key in place.
          this.#keys = [];
          this.#log.warn('session key Secret deleted: all sessions are now invalid; creating a new key');
          void this.#ensure().catch((error: unknown) => this.#log.error({ err: error }, 'could not recreate the session key'));
        },
      },
      this.#log,
    );
  }

  async stop(): Promise<void> {
    await this.#watch?.stop();
  }

  current(): SessionKey {
    const now = this.#clock.now();
    const key = this.#keys.find((k) => k.retireAt === undefined || k.retireAt > now);
    if (!key) throw new MeshidError('ERR_SESSION_KEY_UNAVAILABLE', 'the session key is being recreated; try again shortly');
    return key;
  }

  find(kid: string): SessionKey | undefined {
    const now = this.#clock.now();
    return this.#keys.find((k) => k.kid === kid && (k.retireAt === undefined || k.retireAt > now));
  }

  /** A new signing key; the old one keeps verifying until the sessions it signed expire. */
  async rotate(): Promise<void> {
    await this.#update((keys) => {
      const now = this.#clock.now();
      const kept = keys.filter((k) => k.retireAt === undefined || k.retireAt > now);
      return [newSessionKey(), ...kept.map((k) => ({ ...k, retireAt: k.retireAt ?? now + this.#ttl }))];
    });
  }

  /** Replaces every key: all existing sessions are refused at once (recovery). */
  async invalidate(): Promise<void> {
    await this.#update(() => [newSessionKey()]);
  }

  async #ensure(): Promise<void> {
    const seen = this.#watchEvents;
    const { secret, created } = await this.#secrets.createIfAbsent(this.#spec, () => ({ [DATA_KEY]: serializeKeys([newSessionKey()]) }));
    if (created) this.#log.info({ secret: SESSION_SECRET_NAME }, 'created the session key');
    this.#loadUnlessWatched(secret, seen);
  }

  /**
   * A read or write answered after the watch delivered something may be older than what the
   * watch showed; the watch will deliver our own write too, so only load when it was quiet.
   */
  #loadUnlessWatched(secret: V1Secret, seen: number): void {
    if (this.#watchEvents === seen) this.#load(secret);
  }

  #load(secret: V1Secret): void {
    try {
      this.#keys = parseKeys(decodeSecret(secret)[DATA_KEY]);
    } catch (error) {
      // Fail closed: a hand-edited, unreadable Secret must not leave old keys trusted.
      this.#keys = [];
      this.#log.error({ err: error, secret: SESSION_SECRET_NAME }, `Secret ${SESSION_SECRET_NAME} is unreadable; refusing all sessions until it is fixed or deleted`);
    }
  }

  async #update(change: (keys: SessionKey[]) => SessionKey[]): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const seen = this.#watchEvents;
      const { secret } = await this.#secrets.createIfAbsent(this.#spec, () => ({ [DATA_KEY]: serializeKeys([newSessionKey()]) }));
      let keys: SessionKey[] = [];
      try {
        keys = parseKeys(decodeSecret(secret)[DATA_KEY]);
      } catch {
        // An unreadable Secret is replaced wholesale.
      }
      try {
        this.#loadUnlessWatched(await this.#secrets.replace(this.#spec, secret.metadata?.resourceVersion ?? '', { [DATA_KEY]: serializeKeys(change(keys)) }), seen);
        return;
      } catch (error) {
        // Another replica wrote first: re-read and apply the change to its result.
        if (!isConflict(error)) throw error;
      }
    }
    throw new MeshidError('ERR_KUBE_UNAVAILABLE', `could not update Secret ${SESSION_SECRET_NAME}: it kept changing underneath`);
  }
}
