import { webcrypto } from 'node:crypto';
import { bitString, booleanTrue, ecdsaSignatureDer, encodeOid as oid, nullValue, octetString, sequence, set, toPem as pem, tlv, unsignedInteger } from '../pki/index.ts';

export type KeyType = 'ec' | 'rsa';

/** A fresh key and the CSR for it. The key lives only in memory, in this object and in the SDS answer. */
export interface KeyAndCsr {
  keyPem: string;
  csrPem: string;
  /** The public key, SubjectPublicKeyInfo DER, to check that the CA signed this key and not another. */
  spki: Buffer;
}

const OID = {
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
};

const ALGORITHMS = {
  ec: {
    generate: { name: 'ECDSA', namedCurve: 'P-256' } satisfies webcrypto.EcKeyGenParams,
    sign: { name: 'ECDSA', hash: 'SHA-256' } satisfies webcrypto.EcdsaParams,
    identifier: sequence(oid(OID.ecdsaWithSha256)),
  },
  rsa: {
    generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } satisfies webcrypto.RsaHashedKeyGenParams,
    sign: { name: 'RSASSA-PKCS1-v1_5' } satisfies webcrypto.Algorithm,
    identifier: sequence(oid(OID.sha256WithRsa), nullValue()),
  },
} as const;

/**
 * Makes a key pair (ECDSA P-256, or RSA-2048 for peers that need it) and a PKCS#10 request
 * (RFC 2986) whose only content is the SPIFFE URI. The subject is empty, so the SAN is
 * critical (RFC 5280 §4.2.1.6), as Istio's agent makes it.
 *
 * WebCrypto rather than crypto.generateKeyPair: both generate off the event loop, but
 * WebCrypto also exports and signs as libuv jobs, while KeyObject.export and the key set-up
 * of crypto.sign run OpenSSL 3's (slow) encoders on the thread that serves every stream.
 */
export async function createKeyAndCsr(spiffeUri: string, keyType: KeyType = 'ec'): Promise<KeyAndCsr> {
  const algorithm = ALGORITHMS[keyType];
  const keys = await webcrypto.subtle.generateKey(algorithm.generate, true, ['sign', 'verify']);
  const [spki, pkcs8] = await Promise.all([webcrypto.subtle.exportKey('spki', keys.publicKey), webcrypto.subtle.exportKey('pkcs8', keys.privateKey)]);
  const san = sequence(tlv(0x86, Buffer.from(spiffeUri, 'ascii'))); // GeneralNames { uniformResourceIdentifier [6] }
  const info = sequence(
    unsignedInteger(Uint8Array.of(0)),
    sequence(), // the empty subject
    Buffer.from(spki),
    tlv(0xa0, sequence(oid(OID.extensionRequest), set(sequence(sequence(oid(OID.subjectAltName), booleanTrue(), octetString(san)))))),
  );
  const raw = new Uint8Array(await webcrypto.subtle.sign(algorithm.sign, keys.privateKey, info));
  const signature = keyType === 'ec' ? ecdsaSignatureDer(raw) : raw;
  return {
    keyPem: pem('PRIVATE KEY', new Uint8Array(pkcs8)),
    csrPem: pem('CERTIFICATE REQUEST', sequence(info, algorithm.identifier, bitString(signature))),
    spki: Buffer.from(spki),
  };
}
