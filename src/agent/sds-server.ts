import { randomBytes } from 'node:crypto';
import { chmod, stat } from 'node:fs/promises';
import { Server, ServerCredentials, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { MeshidError, systemClock, type Clock, type Logger } from '../core/index.ts';
import { callerToken } from './credentials.ts';
import type { KeyType } from './csr.ts';
import { toGrpcStatus } from './grpc-status.ts';
import { CertificateCache, type CertificateCacheStats } from './identity-cache.ts';
import { DEFAULT_TRUST_DOMAIN, checkTrustDomain, type CallerReviewer, type CertificateSigner, type WorkloadIdentity } from '../contract/index.ts';
import { checkIdentity } from './identity.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './renewal.ts';
import { timerScheduler, type Scheduler } from './scheduler.ts';
import { SECRET_TYPE_URL, sdsServiceDefinition, type DeltaDiscoveryRequest, type DiscoveryRequest } from './sds-protos.ts';
import { DeltaStream, SotwStream, checkTypeUrl, resourceNames, type RootListener, type SecretSource, type StreamSink } from './sds-streams.ts';
import { ROOT_RESOURCE, WORKLOAD_RESOURCE, rootSecret, type PackedSecret } from './secrets.ts';
import type { TrustBundle } from './trust-bundle.ts';
import { prepareSocketPath, removeSocket, socketFilePath } from './unix-socket.ts';
import { encodeDiscoveryResponse } from './wire.ts';

export interface SdsServerOptions {
  /** Where to listen: an absolute path or `unix:///path`. */
  socketPath: string;
  reviewer: CallerReviewer;
  signer: CertificateSigner;
  trustBundle: TrustBundle;
  log: Logger;
  /** The SPIFFE trust domain of the certificates asked for; default cluster.local. */
  trustDomain?: string;
  /** Workload keys: ECDSA P-256 (default) or RSA-2048. */
  keyType?: KeyType;
  /** The lifetime asked of the CA; default 24 h, the CA's default too. The CA may shorten it. */
  certificateTtlSeconds?: number;
  /** Mode of the socket's directory when the agent creates it; default 0o750. */
  directoryMode?: number;
  /** Mode of the socket file; default 0o660 (the agent and its group, e.g. the proxies'). */
  socketMode?: number;
  /** HTTP/2 streams one client connection may hold open; default 1000 (an Envoy uses two). */
  maxConcurrentStreams?: number;
  /** Waits between failed renewals; default 1 s doubling to 60 s. */
  retry?: RetryPolicy;
  clock?: Clock;
  scheduler?: Scheduler;
  /** Jitter source, in [0, 1). */
  random?: () => number;
}

export interface SdsServerStats extends CertificateCacheStats {
  streams: number;
}

const DAY_S = 24 * 60 * 60;

function mode(field: string, value: number | undefined, fallback: number): number {
  const m = value ?? fallback;
  if (!Number.isInteger(m) || m < 0 || m > 0o777) throw new MeshidError('ERR_INVALID_ARGUMENT', `${field}: ${String(value)} is not a file mode (0 to 0o777)`);
  return m;
}

function positive(field: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isFinite(n) || n <= 0) throw new MeshidError('ERR_INVALID_ARGUMENT', `${field}: ${String(value)} is not a positive number`);
  return n;
}

/**
 * `meshid agent`'s core: Envoy's Secret Discovery Service (v3) on a Unix socket. A caller
 * presents its pod's service-account token; the agent reviews it, and serves `default` (a key
 * made here and its certificate from the CA) and `ROOTCA` (the trust bundle). Certificates
 * are renewed at about half their life and pushed on the open streams; keys never leave
 * memory and never reach a log.
 */
export class SdsServer {
  readonly #log: Logger;
  readonly #reviewer: CallerReviewer;
  readonly #trustBundle: TrustBundle;
  readonly #cache: CertificateCache;
  readonly #path: string;
  readonly #directoryMode: number;
  readonly #socketMode: number;
  readonly #maxConcurrentStreams: number;
  readonly #source: SecretSource;
  /** Closers of every open stream, to end them at stop. */
  readonly #streams = new Set<() => void>();
  readonly #rootListeners = new Set<RootListener>();
  readonly #noncePrefix = randomBytes(4).toString('hex');
  #nonces = 0;
  #root: PackedSecret | undefined;
  #server: Server | undefined;
  #socketIno: number | undefined;
  #unsubscribeBundle: (() => void) | undefined;
  #stopped = false;

  constructor(options: SdsServerOptions) {
    this.#log = options.log;
    this.#reviewer = options.reviewer;
    this.#trustBundle = options.trustBundle;
    this.#path = socketFilePath(options.socketPath);
    this.#directoryMode = mode('directoryMode', options.directoryMode, 0o750);
    this.#socketMode = mode('socketMode', options.socketMode, 0o660);
    this.#maxConcurrentStreams = Math.floor(positive('maxConcurrentStreams', options.maxConcurrentStreams, 1000));
    const keyType = options.keyType ?? 'ec';
    if (keyType !== 'ec' && keyType !== 'rsa') throw new MeshidError('ERR_INVALID_ARGUMENT', `keyType: "${String(keyType)}" is neither "ec" nor "rsa"`);
    const retry = options.retry ?? DEFAULT_RETRY;
    positive('retry.initialMs', retry.initialMs, 1);
    positive('retry.maxMs', retry.maxMs, 1);
    this.#cache = new CertificateCache({
      signer: options.signer,
      trustDomain: checkTrustDomain(options.trustDomain ?? DEFAULT_TRUST_DOMAIN),
      keyType,
      ttlSeconds: Math.floor(positive('certificateTtlSeconds', options.certificateTtlSeconds, DAY_S)),
      clock: options.clock ?? systemClock,
      scheduler: options.scheduler ?? timerScheduler,
      log: options.log,
      retry,
      ...(options.random ? { random: options.random } : {}),
    });
    this.#source = {
      workload: (identity, token) => this.#cache.certificate(identity, token),
      subscribeWorkload: (identity, subscriber) => this.#cache.subscribe(identity, subscriber),
      root: () => {
        if (!this.#root) throw new MeshidError('ERR_CA_UNAVAILABLE', 'the agent has no trust bundle yet');
        return this.#root;
      },
      currentRoot: () => this.#root,
      subscribeRoot: (listener) => {
        this.#rootListeners.add(listener);
        return () => this.#rootListeners.delete(listener);
      },
      nonce: () => `${this.#noncePrefix}-${(++this.#nonces).toString(36)}`,
    };
  }

  /** The socket's filesystem path. */
  get socketPath(): string {
    return this.#path;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    // stop() ends the certificate cache for good: a stopped server's streams and timers are gone.
    if (this.#stopped) throw new MeshidError('ERR_INVALID_ARGUMENT', 'this SDS server was stopped; make a new one to serve again');
    await prepareSocketPath(this.#path, this.#directoryMode, this.#log);
    this.#updateRoot();
    this.#unsubscribeBundle = this.#trustBundle.onChange(() => this.#updateRoot());
    // Channelz keeps per-connection and per-call bookkeeping for a debug service the agent
    // does not expose; off, a node full of proxies costs noticeably less memory and CPU.
    const server = new Server({ 'grpc.max_concurrent_streams': this.#maxConcurrentStreams, 'grpc.enable_channelz': 0 });
    server.addService(sdsServiceDefinition(), {
      StreamSecrets: (call: ServerDuplexStream<DiscoveryRequest, Buffer>) =>
        this.#serve(call, (identity, token, sink) => new SotwStream(this.#source, identity, token, sink, this.#log)),
      DeltaSecrets: (call: ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) =>
        this.#serve(call, (identity, token, sink) => new DeltaStream(this.#source, identity, token, sink, this.#log)),
      FetchSecrets: (call: ServerUnaryCall<DiscoveryRequest, Buffer>, callback: sendUnaryData<Buffer>) => this.#fetch(call, callback),
    });
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.bindAsync(`unix://${this.#path}`, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve()));
      });
      this.#socketIno = (await stat(this.#path)).ino;
      // Between bind and this chmod the socket has the umask's mode; the directory's mode
      // (0750 by default) is what keeps other users out during that moment.
      await chmod(this.#path, this.#socketMode);
    } catch (error) {
      await this.stop();
      throw new MeshidError('ERR_INVALID_ARGUMENT', `could not listen on ${this.#path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    this.#log.info({ socket: this.#path }, 'SDS agent listening');
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribeBundle?.();
    this.#unsubscribeBundle = undefined;
    this.#cache.close();
    for (const close of [...this.#streams]) close();
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    await removeSocket(this.#path, this.#socketIno);
    this.#socketIno = undefined;
  }

  /**
   * Renews every certificate that an open stream serves, now and with new keys, and pushes
   * them; certificates that no stream serves are dropped. For CA rotations and compromise.
   */
  rotateCertificates(): Promise<void> {
    return this.#cache.renewAll();
  }

  stats(): SdsServerStats {
    return { ...this.#cache.stats(), streams: this.#streams.size };
  }

  #updateRoot(): void {
    const roots = this.#trustBundle.roots();
    if (roots.length === 0) {
      if (this.#root) this.#log.warn('the trust bundle became empty; still serving the previous roots');
      return;
    }
    const next = rootSecret(roots);
    if (next.version === this.#root?.version) return;
    this.#root = next;
    this.#log.info({ version: next.version, roots: roots.length, streams: this.#rootListeners.size }, 'pushing a new trust bundle');
    for (const listener of [...this.#rootListeners]) listener.rootChanged();
  }

  /**
   * One SDS stream: the token is reviewed once, before anything is served, and requests are
   * handled in order, one at a time.
   */
  #serve<Req>(
    call: ServerDuplexStream<Req, Buffer>,
    create: (identity: WorkloadIdentity, token: string, sink: StreamSink) => { request(request: Req): Promise<void>; close(): void },
  ): void {
    let ended = false;
    let stream: { request(request: Req): Promise<void>; close(): void } | undefined;
    const cleanUp = (): void => {
      ended = true;
      stream?.close();
      this.#streams.delete(close);
    };
    const sink: StreamSink = {
      write: (response) => {
        if (!ended) call.write(response);
      },
      fail: (error) => {
        if (ended) return;
        cleanUp();
        const status = toGrpcStatus(error, this.#log);
        this.#log.debug({ code: status.code, details: status.details }, 'ending an SDS stream');
        call.emit('error', status);
      },
    };
    const close = (): void => sink.fail(new MeshidError('ERR_CA_UNAVAILABLE', 'the SDS agent is stopping'));
    this.#streams.add(close);
    call.on('cancelled', cleanUp);
    call.on('close', cleanUp);
    call.on('error', () => {
      ended = true;
      cleanUp();
    });

    let token: string;
    try {
      token = callerToken(call.metadata);
    } catch (error) {
      sink.fail(error);
      return;
    }
    let queue: Promise<void> = this.#review(token)
      .then((identity) => {
        if (!ended) stream = create(identity, token, sink);
      })
      .catch((error: unknown) => sink.fail(error));
    call.on('data', (request: Req) => {
      queue = queue.then(() => (stream && !ended ? stream.request(request) : undefined)).catch((error: unknown) => sink.fail(error));
    });
    call.on('end', () => {
      // The client closed its side: nothing more will be asked, so the stream ends cleanly.
      void queue.then(() => {
        if (ended) return;
        cleanUp();
        call.end();
      });
    });
  }

  #fetch(call: ServerUnaryCall<DiscoveryRequest, Buffer>, callback: sendUnaryData<Buffer>): void {
    const answer = async (): Promise<Buffer> => {
      const token = callerToken(call.metadata);
      const identity = await this.#review(token);
      checkTypeUrl(call.request.type_url);
      const names = resourceNames(call.request.resource_names);
      if (names.length === 0) throw new MeshidError('ERR_SDS_UNKNOWN_RESOURCE', `name the SDS resources to fetch: "${WORKLOAD_RESOURCE}", "${ROOT_RESOURCE}" or both`);
      const resources: PackedSecret[] = [];
      for (const name of names) resources.push(name === ROOT_RESOURCE ? this.#source.root() : (await this.#cache.certificate(identity, token)).secret);
      return encodeDiscoveryResponse(resources.map((r) => r.version).join('.'), resources.map((r) => r.sotwField), SECRET_TYPE_URL, this.#source.nonce());
    };
    answer().then(
      (response) => callback(null, response),
      (error: unknown) => callback(toGrpcStatus(error, this.#log)),
    );
  }

  /** Every stream and fetch passes here before it may touch the shared certificate cache. */
  async #review(token: string): Promise<WorkloadIdentity> {
    return checkIdentity(await this.#reviewer.review(token));
  }
}
