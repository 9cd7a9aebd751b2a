import { webcrypto } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { caClientConstructor, type CertificateResponseMessage } from '../../src/contract/index.ts';

/** A namespace and service account of a test workload, and a projected token for it. */
export async function workloadToken(admin: KubeConfig, namespace: string, serviceAccount: string, audiences = ['istio-ca'], expirationSeconds = 600): Promise<string> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } }).catch(() => undefined);
  const answer = await core.createNamespacedServiceAccountToken({ namespace, name: serviceAccount, body: { spec: { audiences, expirationSeconds } } });
  const token = answer.status?.token;
  if (!token) throw new Error(`no token for ${namespace}/${serviceAccount}`);
  return token;
}

/** A CSR as an SDS agent makes one: a fresh P-256 key and only the SANs asked for. */
export async function makeCsr(options: { uris?: string[]; dns?: string[]; cn?: string } = {}): Promise<{ csr: string; keys: webcrypto.CryptoKeyPair }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const names = [...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })), ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(options.cn ? { name: `CN=${options.cn}` } : {}),
    keys,
    signingAlgorithm: alg,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return { csr: csr.toString('pem'), keys };
}

export interface CaCallResult {
  chain?: string[];
  code?: number;
  details?: string;
}

export type CaClient = Client & {
  CreateCertificate(req: unknown, md: Metadata, opts: { deadline: number }, cb: (e: ServiceError | null, r?: CertificateResponseMessage) => void): void;
};

/** A CreateCertificate client over TLS that trusts `rootPem`, as Istio's agent dials the CA. */
export function caClient(address: string, rootPem: string): CaClient {
  const Ctor = caClientConstructor();
  return new Ctor(address, credentials.createSsl(Buffer.from(rootPem)), { 'grpc.ssl_target_name_override': 'localhost' }) as unknown as CaClient;
}

/** One CreateCertificate call with whatever request and metadata the caller makes up. */
export function callCa(client: CaClient, request: unknown, md: Metadata): Promise<CaCallResult> {
  return new Promise<CaCallResult>((resolve) => {
    client.CreateCertificate(request, md, { deadline: Date.now() + 10_000 }, (error, res) =>
      resolve(error ? { code: error.code, details: error.details } : { chain: res?.cert_chain ?? [] }),
    );
  });
}

/** One CreateCertificate call over TLS, as Istio's agent makes it. */
export async function createCertificate(address: string, rootPem: string, token: string | undefined, csr: string, validity = 0): Promise<CaCallResult> {
  const client = caClient(address, rootPem);
  const md = new Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  try {
    return await callCa(client, { csr, validity_duration: validity }, md);
  } finally {
    client.close();
  }
}
