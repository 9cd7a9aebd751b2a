import 'reflect-metadata';
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { toPem } from './der.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// @peculiar/x509 picks up Node's global WebCrypto (OpenSSL underneath) by itself.

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const RSA_SIGN = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
const DAY = 24 * 60 * 60 * 1000;

/**
 * An authority from PEM files (a CA kept in a Secret), RSA or ECDSA P-256, so it can sign
 * meshid's own serving certificates with issueLeaf.
 */
export async function authorityFromPem(certPem: string, keyPem: string): Promise<Authority> {
  const cert = new x509.X509Certificate(certPem);
  // Through OpenSSL first: plugged-in CA keys are often PKCS#1 or SEC1, WebCrypto takes only PKCS#8.
  const pkcs8 = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const algorithm: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams = createPublicKey(certPem).asymmetricKeyType === 'ec' ? EC_KEY : { ...RSA_SIGN };
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
  const publicKey: CryptoKey = await webcrypto.subtle.importKey('spki', cert.publicKey.rawData, algorithm, true, ['verify']);
  return { cert, certPem, keyPem, keys: { privateKey, publicKey } };
}

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface Authority extends KeyPairPem {
  keys: CryptoKeyPair;
  cert: x509.X509Certificate;
}

export interface LeafRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ips?: string[];
  usage: 'server' | 'client' | 'both';
  validDays?: number;
}

/**
 * Small PKI for meshid's own TLS (playground cluster, self-signed serving certificates): an
 * authority and leaves it signs. ECDSA P-256 keeps key
 * generation instant, so every `meshid up` gets fresh keys and nothing secret is reused.
 */
export async function createAuthority(commonName: string, validDays = 365): Promise<Authority> {
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validDays * DAY),
    signingAlgorithm: EC_SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { keys, cert, certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

export async function issueLeaf(ca: Authority, request: LeafRequest): Promise<KeyPairPem> {
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const usages = {
    server: [x509.ExtendedKeyUsage.serverAuth],
    client: [x509.ExtendedKeyUsage.clientAuth],
    both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  }[request.usage];
  const altNames = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const subject = [{ CN: [request.commonName] }, ...(request.organizations ?? []).map((o) => ({ O: [o] }))];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (request.validDays ?? 365) * DAY),
    signingAlgorithm: ca.keys.privateKey.algorithm.name === 'ECDSA' ? EC_SIGN : RSA_SIGN,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(usages),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames)] : []),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** An RSA key pair for signing service-account tokens (RS256, as real clusters use). */
export async function createServiceAccountSigningKey(): Promise<{ privatePem: string; publicPem: string }> {
  const keys = await webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return { privatePem: await privateKeyPem(keys.privateKey), publicPem: toPem('PUBLIC KEY', new Uint8Array(spki)) };
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return toPem('PRIVATE KEY', new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', key)));
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive, as RFC 5280 requires
  return Buffer.from(bytes).toString('hex');
}

/** Concatenates PEM blocks, each on its own lines (some encoders omit the final newline). */
export function pemBundle(...pems: string[]): string {
  return pems.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}
