import { createPublicKey, type KeyObject } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { MeshidError, type Logger } from '../core/index.ts';
import { SecretClient, decodeSecret, isNotFound, secretQuery, watchSecrets, type SecretSelector, type SecretWatch } from '../kube/index.ts';
import type { SigningKey } from './issuer.ts';
import { generateSigningKeyPem, parsePrivateKey } from './keys.ts';
import type { PublicKeySource } from './validator.ts';

export const SIGNING_KEY_PREFIX = 'user-token-signing-key-';
const SIGNING_KEY_LABEL = 'user-token-signing-key';
/**
 * The signing keys are many Secrets under one name prefix, which no field selector can
 * express; every key meshid ever wrote carries this label (a key made by hand needs it too,
 * or `meshid signing-keys import`), so the apiserver sends the watch nothing else.
 */
export const SIGNING_KEYS_SELECTOR: SecretSelector = { key: SIGNING_KEY_LABEL };
const VALUE = 'value';

export interface SigningKeyInfo {
  serial: number;
  createdAt: string | undefined;
}

/** Reads: the key that signs (highest serial) and every key that validates. */
export interface SigningKeyAccessor extends PublicKeySource {
  signingKey(): SigningKey;
  list(): SigningKeyInfo[];
}

/** Writes: new keys, removal, and the first key on an empty cluster. */
export interface SigningKeyManager {
  ensureFirst(): Promise<void>;
  rotate(): Promise<number>;
  remove(serial: number): Promise<void>;
  importKey(serial: number, pem: string): Promise<void>;
  exportKey(serial: number): Promise<string>;
}

interface LoadedKey {
  serial: number;
  privateKey: KeyObject;
  publicKey: KeyObject;
  createdAt: string | undefined;
}

/** Typed list calls give a Date, watch events the raw string: accept both. */
function isoTime(value: Date | string | undefined): string | undefined {
  return value === undefined ? undefined : new Date(value).toISOString();
}

export function serialOf(name: string | undefined): number | undefined {
  if (!name?.startsWith(SIGNING_KEY_PREFIX)) return undefined;
  const serial = Number(name.slice(SIGNING_KEY_PREFIX.length));
  return Number.isSafeInteger(serial) && serial > 0 ? serial : undefined;
}

/**
 * User-token signing keys held in Secrets `user-token-signing-key-<serial>`, watched by
 * every replica. The highest serial signs; every key present validates.
 */
export class KubeSigningKeys implements SigningKeyAccessor, SigningKeyManager {
  readonly #secrets: SecretClient;
  readonly #api: CoreV1Api;
  readonly #keys = new Map<number, LoadedKey>();
  #watch: SecretWatch | undefined;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly log: Logger,
  ) {
    this.#secrets = new SecretClient(kc);
    this.#api = kc.makeApiClient(CoreV1Api);
  }

  async start(): Promise<void> {
    this.#watch = await watchSecrets(this.kc, this.namespace, SIGNING_KEYS_SELECTOR, {
      onUpsert: (secret) => this.#load(secret),
      onDelete: (secret) => {
        const serial = serialOf(secret.metadata?.name);
        if (serial !== undefined) this.#keys.delete(serial);
      },
    }, this.log);
  }

  async stop(): Promise<void> {
    await this.#watch?.stop();
  }

  signingKey(): SigningKey {
    const serial = Math.max(...this.#keys.keys());
    const key = this.#keys.get(serial);
    if (!key) {
      throw new MeshidError('ERR_SIGNING_KEY_MISSING', 'there is no user-token signing key', { hint: 'Create one with `meshid signing-keys rotate`.' });
    }
    return { kid: String(serial), privateKey: key.privateKey };
  }

  publicKey(kid: string): KeyObject | undefined {
    // kid is the serial in decimal, exactly; "01" or "1.0" name nothing.
    const serial = Number(kid);
    return String(serial) === kid ? this.#keys.get(serial)?.publicKey : undefined;
  }

  list(): SigningKeyInfo[] {
    return [...this.#keys.values()].sort((a, b) => a.serial - b.serial).map((k) => ({ serial: k.serial, createdAt: k.createdAt }));
  }

  /** The keys as Kubernetes holds them now (one list call; no watch needed, for the CLI). */
  async listStored(): Promise<SigningKeyInfo[]> {
    const list = await this.#api.listNamespacedSecret({ namespace: this.namespace, ...secretQuery(SIGNING_KEYS_SELECTOR) });
    return list.items
      .map((s) => ({ serial: serialOf(s.metadata?.name), createdAt: isoTime(s.metadata?.creationTimestamp) }))
      .filter((k): k is SigningKeyInfo => k.serial !== undefined)
      .sort((a, b) => a.serial - b.serial);
  }

  async ensureFirst(): Promise<void> {
    if ((await this.#serials()).length > 0) return;
    const { created } = await this.#secrets.createIfAbsent(this.#spec(1), () => ({ [VALUE]: generateSigningKeyPem() }));
    if (created) this.log.info({ serial: 1 }, 'created the first user-token signing key');
  }

  async rotate(): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const serial = Math.max(0, ...(await this.#serials())) + 1;
      const { created } = await this.#secrets.createIfAbsent(this.#spec(serial), () => ({ [VALUE]: generateSigningKeyPem() }));
      if (created) return serial;
    }
    throw new MeshidError('ERR_KUBE_UNAVAILABLE', 'could not create a new signing key: serials kept being taken');
  }

  async remove(serial: number): Promise<void> {
    try {
      await this.#api.deleteNamespacedSecret({ namespace: this.namespace, name: `${SIGNING_KEY_PREFIX}${serial}` });
    } catch (error) {
      if (isNotFound(error)) throw new MeshidError('ERR_NOT_FOUND', `signing key ${serial} does not exist`);
      throw error;
    }
  }

  async importKey(serial: number, pem: string): Promise<void> {
    parsePrivateKey(pem);
    const { created } = await this.#secrets.createIfAbsent(this.#spec(serial), () => ({ [VALUE]: pem }));
    if (!created) throw new MeshidError('ERR_INVALID_ARGUMENT', `signing key ${serial} already exists; pick another serial`);
  }

  async exportKey(serial: number): Promise<string> {
    const secret = await this.#secrets.read(this.namespace, `${SIGNING_KEY_PREFIX}${serial}`);
    const value = secret ? decodeSecret(secret)[VALUE] : undefined;
    if (!value) throw new MeshidError('ERR_NOT_FOUND', `signing key ${serial} does not exist`);
    return value;
  }

  async #serials(): Promise<number[]> {
    return (await this.listStored()).map((k) => k.serial);
  }

  #spec(serial: number) {
    return { namespace: this.namespace, name: `${SIGNING_KEY_PREFIX}${serial}`, key: SIGNING_KEY_LABEL };
  }

  #load(secret: V1Secret): void {
    const serial = serialOf(secret.metadata?.name);
    if (serial === undefined) return;
    try {
      const privateKey = parsePrivateKey(decodeSecret(secret)[VALUE] ?? '');
      this.#keys.set(serial, { serial, privateKey, publicKey: createPublicKey(privateKey), createdAt: isoTime(secret.metadata?.creationTimestamp) });
    } catch (error) {
      // A broken key must neither sign nor validate.
      this.#keys.delete(serial);
      this.log.error({ err: error, serial }, `Secret ${SIGNING_KEY_PREFIX}${serial} does not hold a usable RSA key; ignoring it`);
    }
  }
}
