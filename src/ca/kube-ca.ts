import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { MeshidError, systemClock, type Clock, type Logger } from '../core/index.ts';
import { SecretClient, decodeSecret, isConflict, watchSecrets, type SecretStrings, type SecretWatch } from '../kube/index.ts';
import { createSelfSignedRoot, describeRoot, loadCaMaterial, type CaKeyType, type CaMaterial, type RootSummary } from './authority.ts';
import { LeafSigner } from './signer.ts';
import { CA_SECRET, PLUGGED_CA_SECRET, advanceRotation, nextTransition, parseCaSecret, serializeCaSecret, trustBundle, type StoredCa } from './state.ts';

export const CA_SECRET_KEY_LABEL = 'ca-root';

export interface CaStatus {
  mode: 'self-signed' | 'plugged-in';
  rootFingerprint: string;
  notAfter: string;
  /** Every root workloads trust now, with its PEM (what istio-ca-root-cert carries). */
  trustBundle: (RootSummary & { pem: string })[];
  rotation?: { newRootSignsAt?: string; oldRootsDroppedAt?: string };
  /** Set when `cacerts` is present but unusable: the CA keeps signing with what it had. */
  error?: string;
}

/** One description for the server and `meshid ca status`, which reads the Secrets itself. */
export function describeCa(signingRoot: string, stored: StoredCa | undefined, plugged: boolean, error: string | undefined): CaStatus {
  const root = describeRoot(signingRoot);
  const { next, previous } = stored ?? {};
  return {
    mode: plugged && !error ? 'plugged-in' : 'self-signed',
    rootFingerprint: root.fingerprint,
    notAfter: root.notAfter,
    trustBundle: trustBundle(signingRoot, stored).map((pem) => ({ ...describeRoot(pem), pem })),
    ...(next || previous
      ? { rotation: { ...(next ? { newRootSignsAt: new Date(next.signAt).toISOString() } : {}), ...(previous ? { oldRootsDroppedAt: new Date(previous.dropAt).toISOString() } : {}) } }
      : {}),
    ...(error ? { error } : {}),
  };
}

export interface KubeCaOptions {
  namespace: string;
  keyType: CaKeyType;
  clock?: Clock;
  log: Logger;
}

/** The CA as one replica sees it: signer, trust bundle and status, always from Kubernetes. */
export interface CaView {
  signer(): LeafSigner;
  /** The signing certificate, its key and chain: for the CA's own serving certificate. */
  material(): CaMaterial;
  /** Roots to trust, the signing one first. */
  bundle(): string[];
  /** The root the current signer's chains end in. */
  signingRoot(): string;
  status(): CaStatus;
  onChange(listener: () => void): () => void;
}

/**
 * Keeps the CA material in Secrets, as istiod does: a self-signed root in `istio-ca-secret`
 * (created by exactly one replica), or a plugged-in CA in `cacerts`, which wins when present.
 * Every replica watches both and drives a rotation's timed steps; a replica that dies
 * mid-rotation leaves the state in the Secret, and the others finish it.
 */
export class KubeCa implements CaView {
  readonly #secrets: SecretClient;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #listeners = new Set<() => void>();
  #stored: StoredCa | undefined;
  #storedVersion = '';
  #plugged: SecretStrings | undefined;
  #material: CaMaterial | undefined;
  #signer: LeafSigner | undefined;
  #pluggedError: string | undefined;
  #watches: SecretWatch[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly kc: KubeConfig,
    private readonly options: KubeCaOptions,
  ) {
    this.#secrets = new SecretClient(kc);
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
  }

  async start(): Promise<void> {
    const spec = { namespace: this.options.namespace, name: CA_SECRET, key: CA_SECRET_KEY_LABEL };
    // Make a root only when there is none: creating one costs an RSA key generation.
    const existing = await this.#secrets.read(spec.namespace, spec.name);
    const root = existing ? undefined : await createSelfSignedRoot({ keyType: this.options.keyType, clock: this.#clock });
    const { secret, created } = existing
      ? { secret: existing, created: false }
      : await this.#secrets.createIfAbsent(spec, () => serializeCaSecret({ caCert: root?.certPem ?? '', caKey: root?.keyPem ?? '' }));
    if (created) this.#log.info({ secret: CA_SECRET, keyType: this.options.keyType }, 'created a self-signed root CA');
    this.#loadStored(secret);
    this.#plugged = decodeOrUndefined(await this.#secrets.read(this.options.namespace, PLUGGED_CA_SECRET));
    this.#rebuild();
    const ns = this.options.namespace;
    this.#watches.push(
      await watchSecrets(this.kc, ns, { name: CA_SECRET }, { onUpsert: (s) => this.#onStored(s), onDelete: () => this.#log.error({ secret: CA_SECRET }, 'the root CA Secret was deleted; signing with the root in memory until it is restored (`meshid recover ca`)') }, this.#log),
      await watchSecrets(this.kc, ns, { name: PLUGGED_CA_SECRET }, {
        onUpsert: (s) => {
          this.#plugged = decodeSecret(s);
          this.#rebuild();
        },
        onDelete: () => {
          this.#plugged = undefined;
          this.#rebuild();
        },
      }, this.#log),
    );
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    await Promise.all(this.#watches.map((w) => w.stop()));
  }

  signer(): LeafSigner {
    if (!this.#signer) throw new MeshidError('ERR_CA_UNAVAILABLE', 'the CA has no usable key yet');
    return this.#signer;
  }

  material(): CaMaterial {
    if (!this.#material) throw new MeshidError('ERR_CA_UNAVAILABLE', 'the CA has no usable key yet');
    return this.#material;
  }

  signingRoot(): string {
    const roots = this.#material?.rootPems;
    const root = roots?.[0];
    if (!root) throw new MeshidError('ERR_CA_UNAVAILABLE', 'the CA has no usable key yet');
    return root;
  }

  bundle(): string[] {
    return trustBundle(this.signingRoot(), this.#stored);
  }

  status(): CaStatus {
    return describeCa(this.signingRoot(), this.#stored, this.#plugged !== undefined, this.#pluggedError);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #onStored(secret: V1Secret): void {
    this.#loadStored(secret);
    this.#rebuild();
  }

  #loadStored(secret: V1Secret): void {
    try {
      this.#stored = parseCaSecret(decodeSecret(secret));
      this.#storedVersion = secret.metadata?.resourceVersion ?? '';
    } catch (error) {
      this.#log.error({ err: error, secret: CA_SECRET }, 'the root CA Secret is unreadable; keeping the last good root');
    }
  }

  /** Recomputes the signer from what is stored; a bad `cacerts` keeps the last good signer. */
  #rebuild(): void {
    let material: CaMaterial | undefined;
    if (this.#plugged) {
      try {
        material = loadCaMaterial(
          { certPem: this.#plugged['ca-cert.pem'] ?? '', keyPem: this.#plugged['ca-key.pem'] ?? '', certChainPem: this.#plugged['cert-chain.pem'], rootCertPem: this.#plugged['root-cert.pem'] },
          this.#clock,
        );
        this.#pluggedError = undefined;
      } catch (error) {
        this.#pluggedError = `Secret ${PLUGGED_CA_SECRET}: ${(error as Error).message}`;
        this.#log.error({ err: error, secret: PLUGGED_CA_SECRET }, 'the plugged-in CA is unusable; fix it with `meshid ca set`');
      }
    }
    if (!material && !this.#plugged && this.#stored) {
      try {
        material = loadCaMaterial({ certPem: this.#stored.caCert, keyPem: this.#stored.caKey }, this.#clock);
      } catch (error) {
        this.#log.error({ err: error, secret: CA_SECRET }, 'the self-signed root is unusable; keeping the last good one');
      }
    }
    if (material && material.certPem !== this.#material?.certPem) {
      this.#material = material;
      this.#signer = new LeafSigner(material, this.#clock);
    }
    this.#schedule();
    for (const listener of this.#listeners) listener();
  }

  /** Arms one timer for the rotation's next step; any replica may take it, the Secret's resourceVersion decides. */
  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    const at = this.#stored ? nextTransition(this.#stored) : undefined;
    if (at === undefined) return;
    this.#timer = setTimeout(() => void this.#advance(), Math.max(0, at - this.#clock.now()));
    this.#timer.unref();
  }

  async #advance(): Promise<void> {
    const stored = this.#stored;
    if (!stored) return;
    const next = advanceRotation(stored, this.#clock.now());
    if (!next) return this.#schedule();
    try {
      const written = await this.#secrets.replace({ namespace: this.options.namespace, name: CA_SECRET, key: CA_SECRET_KEY_LABEL }, this.#storedVersion, serializeCaSecret(next));
      this.#log.info({ step: next.caCert !== stored.caCert ? 'new root signs' : 'old roots dropped' }, 'CA rotation advanced');
      this.#onStored(written);
    } catch (error) {
      // 409: another replica took this step first; its write reaches us through the watch.
      if (!isConflict(error)) {
        this.#log.warn({ err: error }, 'could not advance the CA rotation; retrying');
        this.#timer = setTimeout(() => void this.#advance(), 2000);
        this.#timer.unref();
      }
    }
  }
}

function decodeOrUndefined(secret: V1Secret | undefined): SecretStrings | undefined {
  return secret ? decodeSecret(secret) : undefined;
}
