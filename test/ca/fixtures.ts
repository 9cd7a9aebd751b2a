// Shared material for the CA tests: CSRs as real peers make them, and a small CSR builder
// for the shapes no well-behaved peer sends (so each refusal can be tested on its own).
import 'reflect-metadata';
import { generateKeyPairSync, sign, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { TAG, bitString, encodeOid, extension, sequence, tlv, toPem } from '../../src/pki/index.ts';

export const URI = 'spiffe://cluster.local/ns/default/sa/sleep';

// Made with Go's crypto/x509 exactly as Istio's pilot-agent builds its workload CSR
// (security/pkg/pki/util GenCSRTemplate): Subject{Organization: [""]} — which Go encodes as
// an O attribute with an empty PrintableString — and one critical SAN extension with the URI.
export const GO_ISTIO_EC_CSR = `-----BEGIN CERTIFICATE REQUEST-----
MIIBETCBuAIBADALMQkwBwYDVQQKEwAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AASTQUyFCrMOVJz/yoBNeimJhskwPvz9IMzzWu3+i1LvX+GzuUQaw9znMdp3dD7L
1tTMJAHosPDrZsEsUP1D61B/oEswSQYJKoZIhvcNAQkOMTwwOjA4BgNVHREBAf8E
LjAshipzcGlmZmU6Ly9jbHVzdGVyLmxvY2FsL25zL2RlZmF1bHQvc2Evc2xlZXAw
CgYIKoZIzj0EAwIDSAAwRQIgFvL/GIhVE7duhS5fomLP/F+fldldzG8RZT+9iekK
JGMCIQCrGBPbc/qPxVnyXsvd4dJZSFHO3+aA8k8d1mrLQQzomw==
-----END CERTIFICATE REQUEST-----
`;

export const GO_ISTIO_RSA_CSR = `-----BEGIN CERTIFICATE REQUEST-----
MIICmzCCAYMCAQAwCzEJMAcGA1UEChMAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A
MIIBCgKCAQEAtXVHmx5WULWsCPFg5nxgBA5wNNY6CVfLdL0wqFn4bb5at4bzqTwl
9QzBL7BDoCsTyfhMwx9DtNNyoLwXZ2J+zbkA8kB8xh8/yf+aODd/UrcmBgFX28jE
pow/W29GO5BxTxluka8A396QX58u85VGTCeumhh/lFRS4rJbkJA609mtQHrbGNuU
DOGsNAa9JHWYJfJksR+WRX3KiuD4cDbf4lEjFphOYmum+x12K+c578SiVa7LKy4+
tFTGIOYYKhk2BLqiCIUywFjAhysebfi9tWl9LnPUlBP6tlSN/yYMHi3V0tpyEj7c
+8R7q8cmzYTC21JlwLOOShRwXYr1eL3ayQIDAQABoEswSQYJKoZIhvcNAQkOMTww
OjA4BgNVHREBAf8ELjAshipzcGlmZmU6Ly9jbHVzdGVyLmxvY2FsL25zL2RlZmF1
bHQvc2Evc2xlZXAwDQYJKoZIhvcNAQELBQADggEBABVdTXEOypiid2FwRclHa8+j
eKLqY9iZklHz7awTR8Fgc6KoUw5Yvj2BXtTFuhfJp6GIyDDH8V+sgdeMotZGsBW0
O3WQ+/osYvBxDjYgC4JhkgrhJRpi+3Tfm2U0MJNgQnB0G4rAXYBmE4xF6+LjZwlP
0KriLvaoyNOVDlJsHUmJXvSCneEPfZTJ0Lhb1vFO9SSONpqtXFQcI6x3vk0U3fYd
BHrqGOicglV+5686P8joRX0uIcOrronqDHtVcJFjRJ2UfOeBjbPiwCCZP2EYJsq5
q1XjlUh5/R7qcGWAKtl8H/bv/ibCB3j2FKiJf9sVV1xCS7zTa8BzuVUA/7Z646A=
-----END CERTIFICATE REQUEST-----
`;

/** A CSR from @peculiar/x509 (WebCrypto keys): empty subject, and the SAN only when given. */
export async function peculiarCsr(keyType: 'ec' | 'rsa', uris: string[] = [URI]): Promise<string> {
  const algorithm =
    keyType === 'ec'
      ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
      : { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: algorithm,
    ...(uris.length > 0 ? { extensions: [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })), true)] } : {}),
  });
  return csr.toString('pem');
}

export interface BuildOptions {
  key?: { privateKey: KeyObject; publicKey: KeyObject };
  /** Name DER; default the empty Name. */
  subject?: Buffer;
  /** Extension DERs for the extensionRequest attribute; none: no attribute at all. */
  extensions?: Buffer[];
  /** Extra Attribute DERs. */
  attributes?: Buffer[];
}

export const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A correctly self-signed CSR of any shape, built by hand. */
export function buildCsr(options: BuildOptions = {}): string {
  const { privateKey, publicKey } = options.key ?? EC_KEY;
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const attributes = [
    ...(options.extensions ? [sequence(encodeOid('1.2.840.113549.1.9.14'), tlv(TAG.SET, sequence(...options.extensions)))] : []),
    ...(options.attributes ?? []),
  ];
  const info = sequence(tlv(TAG.INTEGER, Uint8Array.of(0)), options.subject ?? sequence(), spki, tlv(0xa0, ...attributes));
  const type = privateKey.asymmetricKeyType;
  const [algorithm, hash] =
    type === 'rsa'
      ? [sequence(encodeOid('1.2.840.113549.1.1.11'), Uint8Array.of(TAG.NULL, 0)), 'sha256']
      : type === 'ed25519'
        ? [sequence(encodeOid('1.3.101.112')), null]
        : [sequence(encodeOid('1.2.840.10045.4.3.2')), 'sha256'];
  const signature = sign(hash, info, privateKey);
  return toPem('CERTIFICATE REQUEST', sequence(info, algorithm, bitString(signature)));
}

/** A Name with one attribute per RDN. */
export function name(...attributes: [oid: string, value: string, tag?: number][]): Buffer {
  return sequence(...attributes.map(([oid, value, tag]) => tlv(TAG.SET, sequence(encodeOid(oid), tlv(tag ?? TAG.UTF8_STRING, Buffer.from(value, 'utf8'))))));
}

/** A SAN extension from [GeneralName tag, content] pairs. */
export function san(...names: [tag: number, content: Buffer | string][]): Buffer {
  return extension('2.5.29.17', true, sequence(...names.map(([tag, content]) => tlv(tag, typeof content === 'string' ? Buffer.from(content, 'latin1') : content))));
}

export const uriName = (uri: string): [number, string] => [0x86, uri];

export interface TestCert {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

export interface TestCertOptions {
  name: string;
  /** Self-signed when absent. */
  issuer?: TestCert;
  ca?: boolean;
  /** x509.KeyUsageFlags; default keyCertSign|cRLSign for a CA, digitalSignature otherwise. */
  keyUsage?: number;
  notBefore?: Date;
  notAfter?: Date;
  keyType?: 'ec' | 'rsa';
}

const DAY = 24 * 3600 * 1000;

/** A certificate for hierarchy tests (intermediates, non-CA certificates, expired ones), by @peculiar/x509. */
export async function testCert(options: TestCertOptions): Promise<TestCert> {
  const algorithm =
    options.keyType === 'rsa'
      ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
      : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const ca = options.ca ?? true;
  const usage = options.keyUsage ?? (ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature);
  const issuer = options.issuer;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: webcrypto.getRandomValues(Buffer.alloc(8)).toString('hex').replace(/^./, '1'),
    subject: `O=meshid tests, CN=${options.name}`,
    issuer: issuer ? issuer.cert.subject : `O=meshid tests, CN=${options.name}`,
    notBefore: options.notBefore ?? new Date(now - DAY),
    notAfter: options.notAfter ?? new Date(now + 365 * DAY),
    signingAlgorithm: { name: (issuer ?? { keys }).keys.privateKey.algorithm.name, hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: issuer ? issuer.keys.privateKey : keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(ca, undefined, true),
      ...(usage ? [new x509.KeyUsagesExtension(usage, true)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(issuer ? [await x509.AuthorityKeyIdentifierExtension.create(issuer.cert)] : []),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert, keys, certPem: cert.toString('pem'), keyPem: toPem('PRIVATE KEY', new Uint8Array(pkcs8)) };
}

/** Concatenated PEMs, as the files of a cacerts Secret hold them. */
export function bundle(...certs: TestCert[]): string {
  return certs.map((c) => `${c.certPem.trim()}\n`).join('');
}
