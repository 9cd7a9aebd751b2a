import { Metadata, credentials, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { caClientConstructor, type CertificateRequestMessage, type CertificateResponseMessage } from './ca-proto.ts';
import { MeshidError, type ErrorCode } from '../core/index.ts';

/**
 * The CA as the agent sees it: signs a CSR for the identity the token proves (the CA takes
 * the identity from the token, never from the CSR). Answers the PEM chain, leaf first and
 * root last. Throws MeshidError ERR_CA_UNAVAILABLE for anything worth retrying.
 */
export interface CertificateSigner {
  sign(csrPem: string, token: string, ttlSeconds: number): Promise<string[]>;
}

export interface GrpcCaClientOptions {
  /** host:port of the CA's gRPC TLS endpoint. */
  address: string;
  /** The root that the CA's serving certificate chains to. */
  rootCertPem: string;
  /** The name to check the serving certificate against when it differs from the address's host. */
  serverName?: string;
  /** Per call; default 10 s, the time Istio's agent allows one CSR. */
  timeoutMs?: number;
}

type CreateCertificate = (
  request: CertificateRequestMessage,
  metadata: Metadata,
  options: { deadline: number },
  callback: (error: ServiceError | null, response?: CertificateResponseMessage) => void,
) => void;

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * How the CA's gRPC status becomes one of our codes. Everything not named here is a fault
 * of the CA or the path to it, which a later retry may not meet, so it is "unavailable".
 */
const STATUS_CODES: Partial<Record<status, ErrorCode>> = {
  [status.UNAUTHENTICATED]: 'ERR_SDS_CREDENTIAL',
  [status.PERMISSION_DENIED]: 'ERR_CSR_IDENTITY',
  [status.INVALID_ARGUMENT]: 'ERR_CSR_INVALID',
  [status.FAILED_PRECONDITION]: 'ERR_CSR_INVALID',
  [status.OUT_OF_RANGE]: 'ERR_TTL_TOO_LONG',
};

/** The real signer: Istio's IstioCertificateService/CreateCertificate over TLS. */
export class GrpcCaClient implements CertificateSigner {
  readonly #client: Client;
  readonly #create: CreateCertificate;
  readonly #timeoutMs: number;
  readonly #address: string;

  constructor(options: GrpcCaClientOptions) {
    if (!options.address) throw new MeshidError('ERR_INVALID_ARGUMENT', 'address: the CA address (host:port) is required');
    if (!options.rootCertPem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new MeshidError('ERR_INVALID_ARGUMENT', 'rootCertPem: not a PEM certificate');
    }
    const Ctor = caClientConstructor();
    const channelOptions = options.serverName ? { 'grpc.ssl_target_name_override': options.serverName, 'grpc.default_authority': options.serverName } : {};
    this.#client = new Ctor(options.address, credentials.createSsl(Buffer.from(options.rootCertPem)), channelOptions);
    this.#create = (this.#client as unknown as { CreateCertificate: CreateCertificate }).CreateCertificate.bind(this.#client);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#address = options.address;
  }

  sign(csrPem: string, token: string, ttlSeconds: number): Promise<string[]> {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    const request: CertificateRequestMessage = { csr: csrPem, validity_duration: Math.max(0, Math.floor(ttlSeconds)), metadata: { fields: {} } };
    return new Promise((resolve, reject) => {
      this.#create(request, metadata, { deadline: Date.now() + this.#timeoutMs }, (error, response) => {
        if (error) {
          reject(this.#toMeshidError(error));
          return;
        }
        const chain = response?.cert_chain ?? [];
        if (chain.length === 0 || chain.some((pem) => !pem.includes('-----BEGIN CERTIFICATE-----'))) {
          reject(new MeshidError('ERR_CA_UNAVAILABLE', `the CA at ${this.#address} answered without a PEM certificate chain`));
          return;
        }
        resolve(chain);
      });
    });
  }

  close(): void {
    this.#client.close();
  }

  #toMeshidError(error: ServiceError): MeshidError {
    const code = STATUS_CODES[error.code] ?? 'ERR_CA_UNAVAILABLE';
    // The CA's details are safe to repeat (they name no secret); the token never appears.
    const why = error.details || status[error.code] || 'unknown error';
    const message =
      code === 'ERR_CA_UNAVAILABLE' ? `the CA at ${this.#address} is unavailable: ${why}` : `the CA at ${this.#address} refused the certificate request: ${why}`;
    return new MeshidError(code, message, { cause: error });
  }
}
