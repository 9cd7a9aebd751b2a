import 'reflect-metadata';
import { X509Certificate, verify as verifySignature } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import * as x509 from '@peculiar/x509';
import { MeshidError, TtlCache, systemClock, type Clock } from '../core/index.ts';
import { splitPem } from '../pki/index.ts';
import { PROOF_CONTEXT } from './challenge.ts';
import type { Identity } from './identity.ts';
import { kubeCall } from './kube-reviews.ts';

export interface CertificateProof {
  /** PEM: the client certificate, then any intermediates. */
  certificate: string;
  challenge: string;
  /** base64 signature over PROOF_CONTEXT + challenge, made with the certificate's key. */
  signature: string;
}

/** Where the cluster's client CA comes from; an interface so unit tests can supply one. */
export interface ClientCaSource {
  roots(): Promise<X509Certificate[]>;
}

const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';
const MAX_CHAIN = 4;

/**
 * The client CA that kube-apiserver itself trusts, as it publishes it for extension
 * apiservers: ConfigMap kube-system/extension-apiserver-authentication, key client-ca-file.
 */
export class ClusterClientCa implements ClientCaSource {
  readonly #api: CoreV1Api;
  readonly #cache: TtlCache<'roots', X509Certificate[]>;

  constructor(kc: KubeConfig, clock: Clock = systemClock) {
    this.#api = kc.makeApiClient(CoreV1Api);
    this.#cache = new TtlCache(60_000, 1, clock);
  }

  async roots(): Promise<X509Certificate[]> {
    const cached = this.#cache.get('roots');
    if (cached) return cached;
    const cm = await kubeCall(() => this.#api.readNamespacedConfigMap({ namespace: 'kube-system', name: 'extension-apiserver-authentication' }));
    const roots = splitPem(cm.data?.['client-ca-file'] ?? '').map((pem) => new X509Certificate(pem));
    this.#cache.set('roots', roots);
    return roots;
  }
}

/**
 * When a certificate login's credential ends: the earliest notAfter in the chain, as the
 * apiserver would refuse the chain from then on. Call it on a chain that verified.
 */
export function certificateNotAfter(certificate: string): number {
  return Math.min(...splitPem(certificate).map((pem) => Date.parse(new X509Certificate(pem).validTo)));
}

/**
 * Checks a client certificate login without the private key leaving the user's machine:
 * the chain must lead to the cluster's client CA and the signature over our challenge must
 * verify with the certificate's key. User = CN, groups = O, exactly as kube-apiserver maps them.
 */
export async function verifyCertificateProof(proof: CertificateProof, ca: ClientCaSource, clock: Clock = systemClock): Promise<Identity> {
  const pems = splitPem(proof.certificate);
  if (pems.length === 0 || pems.length > MAX_CHAIN) {
    throw new MeshidError('ERR_LOGIN_FAILED', `certificate must be 1 to ${MAX_CHAIN} PEM certificates`);
  }
  let chain: X509Certificate[];
  try {
    chain = pems.map((pem) => new X509Certificate(pem));
  } catch (error) {
    throw new MeshidError('ERR_LOGIN_FAILED', 'certificate is not valid PEM', { cause: error });
  }
  const leaf = chain[0];
  if (!leaf) throw new MeshidError('ERR_LOGIN_FAILED', 'no certificate');
  const now = clock.now();
  for (const cert of chain) {
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) {
      throw new MeshidError('ERR_LOGIN_FAILED', 'a certificate in the chain is expired or not yet valid');
    }
  }
  if (leaf.ca) throw new MeshidError('ERR_LOGIN_FAILED', 'a CA certificate cannot log in');
  const eku = leaf.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(CLIENT_AUTH_EKU) && !eku.includes(ANY_EKU)) {
    throw new MeshidError('ERR_LOGIN_FAILED', 'certificate is not for client authentication');
  }
  verifyChain(chain, (await ca.roots()).filter((root) => Date.parse(root.validFrom) <= now && Date.parse(root.validTo) >= now));

  const data = Buffer.from(PROOF_CONTEXT + proof.challenge);
  const signature = Buffer.from(proof.signature, 'base64');
  const algorithm = leaf.publicKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  let valid = false;
  try {
    valid = verifySignature(algorithm, data, leaf.publicKey, signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new MeshidError('ERR_LOGIN_FAILED', 'the signature over the challenge does not match the certificate');

  return subjectIdentity(leaf);
}

/** Parsing a subject is the dear part of a certificate login; a certificate's subject never changes. */
const subjects = new Map<string, Identity>();
const MAX_SUBJECTS = 10_000;

function subjectIdentity(leaf: X509Certificate): Identity {
  const cached = subjects.get(leaf.fingerprint256);
  if (cached) return cached;
  const name = new x509.X509Certificate(leaf.raw).subjectName;
  const cn = name.getField('CN')[0];
  if (!cn) throw new MeshidError('ERR_LOGIN_FAILED', 'certificate has no common name');
  const identity = { name: cn, groups: [...name.getField('O'), 'system:authenticated'] };
  if (subjects.size >= MAX_SUBJECTS) subjects.clear();
  subjects.set(leaf.fingerprint256, identity);
  return identity;
}

function verifyChain(chain: X509Certificate[], roots: X509Certificate[]): void {
  if (roots.length === 0) throw new MeshidError('ERR_LOGIN_FAILED', 'the cluster publishes no client CA that is valid now');
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i];
    if (!cert) break;
    const root = roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (root) return;
    const next = chain[i + 1];
    if (!next || !next.ca || !cert.checkIssued(next) || !cert.verify(next.publicKey)) break;
  }
  throw new MeshidError('ERR_LOGIN_FAILED', "certificate does not chain to the cluster's client CA");
}
