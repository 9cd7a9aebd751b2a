import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { MeshidError } from '../core/index.ts';

export type KeyFormat = 'pem' | 'pem-base64';

/** A new 2048-bit RSA signing key as PKCS#1 PEM ("RSA PRIVATE KEY"), as kumactl makes them. */
export function generateSigningKeyPem(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
}

export function encodeKey(pem: string, format: KeyFormat): string {
  return format === 'pem' ? pem : Buffer.from(pem).toString('base64');
}

/** Accepts PEM, or PEM wrapped in base64 (how Secrets and `--format pem-base64` carry it). */
function pemText(input: string): string {
  const text = input.trim();
  return text.startsWith('-----BEGIN') ? text : Buffer.from(text, 'base64').toString('utf8');
}

/** An RSA private key of at least 2048 bits, from PKCS#1 or PKCS#8 PEM. */
export function parsePrivateKey(input: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pemText(input));
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'signing key is not a PEM private key', { cause: error });
  }
  assertRsa(key);
  return key;
}

/** An RSA public key from PKCS#1 ("RSA PUBLIC KEY") or PKIX ("PUBLIC KEY") PEM. */
export function parsePublicKey(input: string): KeyObject {
  const pem = pemText(input);
  // createPublicKey would quietly derive a public key from a private one: refuse, since a
  // private key in a validator's config defeats offline issuing.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new MeshidError('ERR_INVALID_ARGUMENT', 'expected a public key, got a private key');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'public key is not PEM (PKCS#1 or PKIX)', { cause: error });
  }
  assertRsa(key);
  return key;
}

/** PKCS#1 "RSA PUBLIC KEY" PEM, as kumactl generate public-key prints it. */
export function publicKeyPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'pkcs1', format: 'pem' }).toString();
}

function assertRsa(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', 'user tokens need an RSA key of at least 2048 bits');
  }
}
