import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** The repository's proto/ folder, from src/contract (tsx) and dist/contract (built) alike. */
const PROTO_FILE = fileURLToPath(new URL('../../proto/istio-ca.proto', import.meta.url));

export const CA_SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';

/** Wire shapes as proto-loader hands them over (int64 as string, Struct as plain JSON). */
export interface CertificateRequestMessage {
  csr: string;
  validity_duration: string | number;
  metadata?: { fields?: Record<string, unknown> } | null;
}
export interface CertificateResponseMessage {
  cert_chain: string[];
}

interface CaPackage {
  istio: { v1: { auth: { IstioCertificateService: ServiceClientConstructor } } };
}

let loaded: ServiceClientConstructor | undefined;

/** Loaded once, lazily: parsing protos costs tens of milliseconds the CLI's --help should not pay. */
function caService(): ServiceClientConstructor {
  loaded ??= (
    loadPackageDefinition(loadSync(PROTO_FILE, { keepCase: true, longs: String, defaults: true, oneofs: true })) as unknown as CaPackage
  ).istio.v1.auth.IstioCertificateService;
  return loaded;
}

export function caServiceDefinition(): ServiceDefinition {
  return caService().service;
}

export function caClientConstructor(): ServiceClientConstructor {
  return caService();
}
