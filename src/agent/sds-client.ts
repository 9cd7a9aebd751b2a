import { Metadata, credentials, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { MeshidError } from '../core/index.ts';
import { SDS_CREDENTIAL_HEADER } from './credentials.ts';
import { ROOT_RESOURCE, WORKLOAD_RESOURCE } from './secrets.ts';
import { SECRET_TYPE_URL, decodeSecret, sdsClientConstructor, type DiscoveryRequest, type DiscoveryResponse } from './sds-protos.ts';

/** What a workload needs for mTLS, as the agent last pushed it. */
export interface WorkloadTls {
  certChainPem: string;
  keyPem: string;
  rootsPem: string;
}

export interface SdsClientOptions {
  /** Path of the agent's Unix socket. */
  socket: string;
  /** The workload's projected service-account token; read again for each new stream. */
  token: () => string;
  /** Called with every complete set: at first, and again on each renewal or root change. */
  onUpdate: (tls: WorkloadTls) => void;
  onError?: (error: Error) => void;
}

type Stream = ClientDuplexStream<Partial<DiscoveryRequest>, DiscoveryResponse>;
type SdsGrpcClient = Client & { StreamSecrets(md: Metadata): Stream };

/** Waits before reopening a stream that ended: doubling from the first to the last. */
const REOPEN_MS = { first: 250, max: 5_000 };

/**
 * An SDS client that behaves as Envoy does: one stream per resource, every response ACKed
 * with its version and nonce, and a stream that ends (the agent restarted) opened again
 * with a fresh token. Used by the playground's demo workloads and by tests.
 */
export class SdsClient {
  readonly #client: SdsGrpcClient;
  readonly #streams = new Map<string, Stream>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #chain: { certChainPem: string; keyPem: string } | undefined;
  #roots: string | undefined;
  #closed = false;

  constructor(private readonly options: SdsClientOptions) {
    const Ctor = sdsClientConstructor();
    this.#client = new Ctor(`unix://${options.socket}`, credentials.createInsecure()) as unknown as SdsGrpcClient;
  }

  start(): void {
    for (const name of [WORKLOAD_RESOURCE, ROOT_RESOURCE]) this.#open(name);
  }

  /** Resolves with the first complete set, or fails after `timeoutMs`. */
  static async first(options: Omit<SdsClientOptions, 'onUpdate'>, timeoutMs = 10_000): Promise<{ client: SdsClient; tls: WorkloadTls }> {
    let resolveFirst: (tls: WorkloadTls) => void = () => undefined;
    let rejectFirst: (error: Error) => void = () => undefined;
    const first = new Promise<WorkloadTls>((resolve, reject) => {
      resolveFirst = resolve;
      rejectFirst = reject;
    });
    const client = new SdsClient({ ...options, onUpdate: (tls) => resolveFirst(tls), onError: (error) => { rejectFirst(error); options.onError?.(error); } });
    client.start();
    const timer = setTimeout(() => rejectFirst(new MeshidError('ERR_CA_UNAVAILABLE', `no certificate from the SDS agent at ${options.socket} within ${timeoutMs / 1000} s`)), timeoutMs);
    try {
      return { client, tls: await first };
    } catch (error) {
      client.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Replaces the update handler (after `first`). */
  onUpdate(listener: (tls: WorkloadTls) => void): void {
    this.options.onUpdate = listener;
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    for (const stream of this.#streams.values()) stream.cancel();
    this.#client.close();
  }

  /** `failures`: streams of this resource that ended in a row without an answer. */
  #open(name: string, failures = 0): void {
    const md = new Metadata();
    md.set(SDS_CREDENTIAL_HEADER, Buffer.from(this.options.token()));
    const stream = this.#client.StreamSecrets(md);
    this.#streams.set(name, stream);
    let answered = false;
    stream.on('status', () => {
      if (this.#closed) return;
      const wait = Math.min(REOPEN_MS.max, REOPEN_MS.first * 2 ** (answered ? 0 : failures));
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (!this.#closed) this.#open(name, answered ? 0 : failures + 1);
      }, wait);
      timer.unref();
      this.#timers.add(timer);
    });
    stream.on('data', (response: DiscoveryResponse) => {
      answered = true;
      // ACK first, as Envoy does, so the agent never waits on our handling.
      stream.write({ type_url: SECRET_TYPE_URL, resource_names: [name], version_info: response.version_info, response_nonce: response.nonce });
      for (const any of response.resources) {
        const secret = decodeSecret(any.value);
        if ('tls_certificate' in secret) {
          this.#chain = { certChainPem: secret.tls_certificate.certificate_chain.inline_bytes.toString('utf8'), keyPem: secret.tls_certificate.private_key.inline_bytes.toString('utf8') };
        } else if ('validation_context' in secret) {
          this.#roots = secret.validation_context.trusted_ca.inline_bytes.toString('utf8');
        }
      }
      if (this.#chain && this.#roots) this.options.onUpdate({ ...this.#chain, rootsPem: this.#roots });
    });
    stream.on('error', (error: Error & { code?: number }) => {
      // 1 = CANCELLED: our own close().
      if (error.code !== 1) this.options.onError?.(error);
    });
    stream.write({ type_url: SECRET_TYPE_URL, resource_names: [name], node: { id: 'meshid-sds-client' } });
  }
}
