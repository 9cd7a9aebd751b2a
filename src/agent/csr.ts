import 'reflect-metadata';
import { generateKeyPair, webcrypto, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';

export type KeyType = 'ec' | 'rsa';

/** A fresh key and the CSR for it. The key lives only in memory, in this object and in the SDS answer. */
export interface KeyAndCsr {
  keyPem: string;
  csrPem: string;
  /** The public half, to check that the CA signed this key and not another. */
  publicKey: KeyObject;
}

const generate = promisify(generateKeyPair);

const ALGORITHMS = {
  ec: {
    importParams: { name: 'ECDSA', namedCurve: 'P-256' } as webcrypto.EcKeyImportParams,
    signing: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
  },
  rsa: {
    importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as webcrypto.RsaHashedImportParams,
    signing: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as webcrypto.Algorithm,
  },
} as const;

/**
 * Makes a key pair (ECDSA P-256, or RSA-2048 for peers that need it) and a PKCS#10 request
 * whose only content is the SPIFFE URI. The subject is empty, so the SAN is critical
 * (RFC 5280 §4.2.1.6). generateKeyPair runs on libuv's pool, so an RSA key (tens of
 * milliseconds) does not stall the streams this process serves.
 */
export async function createKeyAndCsr(spiffeUri: string, keyType: KeyType = 'ec'): Promise<KeyAndCsr> {
  const pair = keyType === 'rsa' ? await generate('rsa', { modulusLength: 2048 }) : await generate('ec', { namedCurve: 'P-256' });
  const algorithm = ALGORITHMS[keyType];
  const pkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  // @peculiar/x509 signs with WebCrypto keys; Node 20's KeyObject has no toCryptoKey yet.
  const keys: webcrypto.CryptoKeyPair = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm.importParams, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, algorithm.importParams, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: algorithm.signing,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeUri }], true)],
  });
  return { keyPem: pem('PRIVATE KEY', pkcs8), csrPem: csr.toString('pem'), publicKey: pair.publicKey };
}

function pem(label: string, der: Buffer): string {
  const body = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}
