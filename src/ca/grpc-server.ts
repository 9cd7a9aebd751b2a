import { Server, ServerCredentials, status, type Metadata, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { GrpcCode, errorMeaning, isMeshidError, systemClock, type Clock, type Logger } from '../core/index.ts';
import { MeshidError } from '../core/index.ts';
import { MAX_TOKEN_BYTES, type SecurityEvent } from '../kube/index.ts';
import { caServiceDefinition, spiffeId, type CallerReviewer, type CertificateRequestMessage, type CertificateResponseMessage, type ReviewedCaller, type WorkloadIdentity } from '../contract/index.ts';
import { IMPERSONATED_IDENTITY_FIELD, type NodeImpersonation } from './impersonation.ts';
import type { IssuanceLedger } from './issued.ts';
import type { CaView } from './kube-ca.ts';
import { inlineSigning, type CertificateSigning } from './signing.ts';

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
  /** Node proxies' requests on behalf of pods on their node; without it every such request is refused. */
  impersonation?: Pick<NodeImpersonation, 'authorize'>;
  /** The audit trail: refused impersonations are written there as Warning events. */
  events?: { record(event: SecurityEvent): void };
  /** Where CSRs are checked and signed: worker threads (SigningPool), or by default the event loop. */
  signing?: CertificateSigning;
}

/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate`: the identity comes from the
 * caller's service-account token alone; the CSR only contributes its public key.
 */
export class CertificateService {
  readonly #clock: Clock;
  readonly #signing: CertificateSigning;

  constructor(
    private readonly ca: CaView,
    private readonly reviewer: CallerReviewer,
    private readonly options: CaServiceOptions,
  ) {
    this.#clock = options.clock ?? systemClock;
    this.#signing = options.signing ?? inlineSigning(ca);
  }

  async createCertificate(request: CertificateRequestMessage, metadata: Metadata, client?: string): Promise<string[]> {
    const token = bearerToken(metadata);
    const caller = await this.reviewer.review(token, client);
    const ttl = this.#ttl(Number(request.validity_duration));
    const identity = await this.#identity(caller, request);
    const uri = spiffeId({ trustDomain: this.options.trustDomain, namespace: identity.namespace, serviceAccount: identity.serviceAccount });
    const leaf = await this.#signing.issue(request.csr, uri, ttl);
    this.options.ledger?.record({
      spiffeId: uri,
      namespace: identity.namespace,
      serviceAccount: identity.serviceAccount,
      serial: leaf.serial,
      issuedAt: new Date(this.#clock.now()).toISOString(),
      notAfter: new Date(leaf.notAfter).toISOString(),
    });
    const by = identity === caller ? {} : { onBehalfOf: uri, nodeProxy: `${caller.namespace}/${caller.serviceAccount}` };
    this.options.log.info({ identity: uri, ttlSeconds: ttl, at: new Date(this.#clock.now()).toISOString(), ...by }, 'issued a workload certificate');
    return leaf.chain;
  }

  /**
   * The caller's own identity, or the one a node proxy names in the request's
   * ImpersonatedIdentity for a pod on its node. A refusal of the latter is an audit event: a
   * workload reaching for another's identity is what an operator must hear about.
   */
  async #identity(caller: ReviewedCaller, request: CertificateRequestMessage): Promise<WorkloadIdentity> {
    const requested = impersonatedIdentity(request);
    if (requested === undefined) return caller;
    try {
      if (!this.options.impersonation) throw new MeshidError('ERR_NODE_IMPERSONATION_DENIED', 'this CA trusts no node proxy to ask for certificates on behalf of other workloads');
      return await this.options.impersonation.authorize(caller, requested);
    } catch (error) {
      if (isMeshidError(error) && error.code !== 'ERR_KUBE_UNAVAILABLE' && error.code !== 'ERR_KUBE_REJECTED') {
        this.options.events?.record({
          reason: 'NodeImpersonationRefused',
          type: 'Warning',
          user: `system:serviceaccount:${caller.namespace}:${caller.serviceAccount}`,
          message: `refused a workload certificate for ${requested.slice(0, 300)} asked by ${caller.namespace}/${caller.serviceAccount}${caller.pod ? ` (pod ${caller.pod.name}${caller.pod.nodeName ? ` on node ${caller.pod.nodeName}` : ''})` : ''}: ${error.message} (${error.code})`,
        });
      }
      throw error;
    }
  }

  #ttl(requested: number): number {
    if (!Number.isFinite(requested) || requested <= 0) return this.options.defaultTtlSeconds;
    if (requested > this.options.maxTtlSeconds) {
      throw new MeshidError('ERR_TTL_TOO_LONG', `validity_duration ${requested}s is longer than this CA's maximum of ${this.options.maxTtlSeconds}s`);
    }
    return Math.floor(requested);
  }
}

/**
 * ImpersonatedIdentity from the request's metadata Struct (proto-loader hands a Value over as
 * `{ kind, stringValue }`). Absent or empty means none, as istiod reads it; any other kind of
 * value is a malformed request, not silently the caller's own identity.
 */
function impersonatedIdentity(request: CertificateRequestMessage): string | undefined {
  const value = request.metadata?.fields?.[IMPERSONATED_IDENTITY_FIELD];
  if (value === undefined || value === null) return undefined;
  const text = (value as { stringValue?: unknown }).stringValue;
  if (typeof text !== 'string') throw new MeshidError('ERR_INVALID_ARGUMENT', `metadata ${IMPERSONATED_IDENTITY_FIELD} must be a string SPIFFE ID`);
  return text === '' ? undefined : text;
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
      // The error table's gRPC column: what Istio's agent and istio-csr clients branch on.
      const code = errorMeaning(error.code).grpc;
      if (code !== GrpcCode.INTERNAL) {
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
