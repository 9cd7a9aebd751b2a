import { Server, ServerCredentials, status, type Metadata, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { isMeshidError, systemClock, type Clock, type ErrorCode, type Logger } from '../core/index.ts';
import { MeshidError } from '../core/index.ts';
import { MAX_TOKEN_BYTES } from '../kube/index.ts';
import { caServiceDefinition, spiffeId, type CallerReviewer, type CertificateRequestMessage, type CertificateResponseMessage } from '../contract/index.ts';
import { checkCsr } from './csr.ts';
import type { IssuanceLedger } from './issued.ts';
import type { CaView } from './kube-ca.ts';

export const DEFAULT_TTL_SECONDS = 24 * 3600;
/** A CSR is a few hundred bytes; a request many times that is an attack or a mistake. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface CaServiceOptions {
  trustDomain: string;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  clock?: Clock;
  log: Logger;
  /** Remembers the newest leaf per identity for the dashboard. */
  ledger?: Pick<IssuanceLedger, 'record'>;
}

/** gRPC status per meshid error: what Istio's agent and istio-csr clients expect to branch on. */
const GRPC_STATUS: Partial<Record<ErrorCode, status>> = {
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_CSR_INVALID: status.INVALID_ARGUMENT,
  ERR_CSR_TOO_LARGE: status.INVALID_ARGUMENT,
  ERR_TTL_TOO_LONG: status.INVALID_ARGUMENT,
  ERR_CSR_IDENTITY: status.PERMISSION_DENIED,
  ERR_KUBE_UNAVAILABLE: status.UNAVAILABLE,
  ERR_CA_UNAVAILABLE: status.UNAVAILABLE,
  ERR_RATE_LIMITED: status.RESOURCE_EXHAUSTED,
};

/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate`: the identity comes from the
 * caller's service-account token alone; the CSR only contributes its public key.
 */
export class CertificateService {
  readonly #clock: Clock;

  constructor(
    private readonly ca: CaView,
    private readonly reviewer: CallerReviewer,
    private readonly options: CaServiceOptions,
  ) {
    this.#clock = options.clock ?? systemClock;
  }

  async createCertificate(request: CertificateRequestMessage, metadata: Metadata, client?: string): Promise<string[]> {
    const token = bearerToken(metadata);
    const caller = await this.reviewer.review(token, client);
    const ttl = this.#ttl(Number(request.validity_duration));
    const uri = spiffeId({ trustDomain: this.options.trustDomain, namespace: caller.namespace, serviceAccount: caller.serviceAccount });
    const { publicKey } = checkCsr(request.csr, uri);
    const leaf = this.ca.signer().issue({ publicKey, uri, ttlSeconds: ttl });
    this.options.ledger?.record({
      spiffeId: uri,
      namespace: caller.namespace,
      serviceAccount: caller.serviceAccount,
      serial: leaf.serial,
      issuedAt: new Date(this.#clock.now()).toISOString(),
      notAfter: new Date(leaf.notAfter).toISOString(),
    });
    this.options.log.info({ identity: uri, ttlSeconds: ttl, at: new Date(this.#clock.now()).toISOString() }, 'issued a workload certificate');
    return leaf.chain;
  }

  #ttl(requested: number): number {
    if (!Number.isFinite(requested) || requested <= 0) return this.options.defaultTtlSeconds;
    if (requested > this.options.maxTtlSeconds) {
      throw new MeshidError('ERR_TTL_TOO_LONG', `validity_duration ${requested}s is longer than this CA's maximum of ${this.options.maxTtlSeconds}s`);
    }
    return Math.floor(requested);
  }
}

function bearerToken(metadata: Metadata): string {
  const value = metadata.get('authorization')[0];
  const text = typeof value === 'string' ? value : value?.toString('utf8');
  const match = text ? /^Bearer\s+(\S+)$/i.exec(text) : null;
  if (!match?.[1]) throw new MeshidError('ERR_UNAUTHENTICATED', 'send the service-account token as `authorization: Bearer <JWT>` metadata');
  if (match[1].length > MAX_TOKEN_BYTES) throw new MeshidError('ERR_UNAUTHENTICATED', 'the authorization metadata is too large to be a service-account token');
  return match[1];
}

/** The address part of grpc-js's peer (`1.2.3.4:5678`, `[::1]:5678`): one allowance per host, whatever its ports. */
export function peerHost(peer: string): string {
  const host = /^(.*):\d+$/.exec(peer)?.[1] ?? peer;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export interface CaServerOptions {
  host: string;
  port: number;
  /** Serving certificate and key; the CA signs its own, so clients trust it through the root. */
  servingCert: () => { certPem: string; keyPem: string; rootPems: string[] };
}

/** The gRPC listener. TLS is re-armed when the root changes, so clients keep verifying it. */
export class CaServer {
  // Channelz (gRPC's introspection service) is never registered here, so its per-call and
  // per-session counters would be kept for no reader.
  readonly #server = new Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES, 'grpc.enable_channelz': 0 });
  #port = 0;

  constructor(
    private readonly service: CertificateService,
    private readonly options: CaServerOptions,
    private readonly log: Logger,
  ) {
    this.#server.addService(caServiceDefinition(), {
      CreateCertificate: (call: ServerUnaryCall<CertificateRequestMessage, CertificateResponseMessage>, callback: sendUnaryData<CertificateResponseMessage>) => {
        this.service.createCertificate(call.request, call.metadata, peerHost(call.getPeer())).then(
          (chain) => callback(null, { cert_chain: chain }),
          (error: unknown) => callback(this.#grpcError(error)),
        );
      },
    });
  }

  get address(): string {
    return `${this.options.host}:${this.#port}`;
  }

  async start(): Promise<void> {
    this.#port = await this.#bind(this.options.port);
  }

  /** Re-binds on the same port with a fresh serving certificate (after a root rotation). */
  async reloadCertificate(): Promise<void> {
    this.#server.unbind(this.address);
    this.#port = await this.#bind(this.#port);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
  }

  #bind(port: number): Promise<number> {
    const { certPem, keyPem, rootPems } = this.options.servingCert();
    const credentials = ServerCredentials.createSsl(Buffer.from(rootPems.join('')), [{ cert_chain: Buffer.from(certPem), private_key: Buffer.from(keyPem) }], false);
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(`${this.options.host}:${port}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
    });
  }

  #grpcError(error: unknown): { code: status; details: string } {
    if (isMeshidError(error)) {
      const code = GRPC_STATUS[error.code];
      if (code !== undefined) {
        // The cause holds what the caller is not told (the apiserver's reason for a refused token).
        const detail = error.cause instanceof Error ? error.cause.message : undefined;
        this.log.info({ code: error.code, reason: error.message, ...(detail ? { detail } : {}) }, 'refused a certificate request');
        return { code, details: `${error.message} (${error.code})` };
      }
    }
    this.log.error({ err: error }, 'certificate request failed');
    return { code: status.INTERNAL, details: 'internal error' };
  }
}
