import { X509Certificate, createHash, createPrivateKey, randomFillSync, sign, type KeyObject } from 'node:crypto';
import { MeshidError, systemClock, type Clock } from '../core/index.ts';
import type { CaMaterial } from './authority.ts';
import { OID, TAG, bitString, encodeOid, encodeTime, extension, keyIdentifier, pemBlocks, readCertificate, sequence, tlv, toPem, unsignedInteger } from '../pki/index.ts';

export interface SignRequest {
  /** The subject's public key, as checkCsr returns it. */
  publicKey: KeyObject;
  /** The one SAN, a SPIFFE ID. */
  uri: string;
  ttlSeconds: number;
}

export interface IssuedLeaf {
  chain: string[];
  /** The leaf's serial, lowercase hex as `openssl x509 -serial` prints it. */
  serial: string;
  notBefore: number;
  notAfter: number;
}

/** Leaves start a minute in the past, so that a peer whose clock lags a little accepts them at once. */
const BACKDATE_MS = 60_000;
const MAX_URI_LENGTH = 2048;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

// The parts of every leaf that do not depend on the CA: basicConstraints CA:false (critical),
// keyUsage (critical), extKeyUsage serverAuth+clientAuth. keyUsage is digitalSignature and
// keyEncipherment, as Istio's leaves carry, except for Ed25519 keys, which RFC 8410 limits to
// signing usages.
const BASIC_CONSTRAINTS = extension('2.5.29.19', true, sequence());
const EXT_KEY_USAGE = extension('2.5.29.37', false, sequence(encodeOid('1.3.6.1.5.5.7.3.1'), encodeOid('1.3.6.1.5.5.7.3.2')));
const FIXED_EXTENSIONS = {
  default: Buffer.concat([BASIC_CONSTRAINTS, extension('2.5.29.15', true, Uint8Array.of(TAG.BIT_STRING, 2, 5, 0xa0)), EXT_KEY_USAGE]),
  signatureOnly: Buffer.concat([BASIC_CONSTRAINTS, extension('2.5.29.15', true, Uint8Array.of(TAG.BIT_STRING, 2, 7, 0x80)), EXT_KEY_USAGE]),
};
const VERSION_3 = tlv(0xa0, tlv(TAG.INTEGER, Uint8Array.of(2)));
const EMPTY_NAME = sequence();
const SAN_OID = encodeOid('2.5.29.17');
const CRITICAL = Uint8Array.of(TAG.BOOLEAN, 1, 0xff);

const SIGNATURE_ALGORITHMS = {
  rsa: { hash: 'sha256', der: sequence(encodeOid('1.2.840.113549.1.1.11'), Uint8Array.of(TAG.NULL, 0)) },
  prime256v1: { hash: 'sha256', der: sequence(encodeOid('1.2.840.10045.4.3.2')) },
  secp384r1: { hash: 'sha384', der: sequence(encodeOid('1.2.840.10045.4.3.3')) },
  secp521r1: { hash: 'sha512', der: sequence(encodeOid('1.2.840.10045.4.3.4')) },
} as const;

const KEY_ALGORITHMS = {
  rsa: sequence(encodeOid('1.2.840.113549.1.1.1'), Uint8Array.of(TAG.NULL, 0)),
  ed25519: sequence(encodeOid('1.3.101.112')),
  'P-256': sequence(encodeOid('1.2.840.10045.2.1'), encodeOid('1.2.840.10045.3.1.7')),
  'P-384': sequence(encodeOid('1.2.840.10045.2.1'), encodeOid('1.3.132.0.34')),
  'P-521': sequence(encodeOid('1.2.840.10045.2.1'), encodeOid('1.3.132.0.35')),
} as const;
const EC_FIELD_BYTES = { 'P-256': 32, 'P-384': 48, 'P-521': 66 } as const;

/**
 * Signs workload leaves with one CA. Everything that is the same for every leaf (issuer name,
 * authority key identifier, signature algorithm, fixed extensions, the chain's PEM) is encoded
 * once here; a signature then costs one OpenSSL `sign` plus a few hundred bytes of DER, with no
 * awaits, so that the CA's throughput is its CPU's signing rate.
 *
 * A leaf: random 128-bit serial; notBefore a minute back; notAfter now + TTL, clamped so it
 * never outlives the CA's chain; empty subject with a critical URI SAN (RFC 5280 requires the
 * SAN to be critical when the subject is empty); keyUsage digitalSignature|keyEncipherment
 * (digitalSignature alone for Ed25519); extKeyUsage serverAuth and clientAuth; CA:false;
 * AKI = the CA's subject key identifier.
 */
export class LeafSigner {
  readonly #clock: Clock;
  readonly #key: KeyObject;
  readonly #hash: string;
  readonly #signatureAlgorithm: Buffer;
  /** signature AlgorithmIdentifier, then issuer Name: the TBS fields between serial and validity. */
  readonly #algorithmAndIssuer: Buffer;
  /** All extensions but the SAN, by the leaf key's kind. */
  readonly #extensions: Record<keyof typeof FIXED_EXTENSIONS, Buffer>;
  readonly #notBefore: number;
  readonly #notAfter: number;
  readonly #chain: string[];

  constructor(material: CaMaterial, clock: Clock = systemClock) {
    this.#clock = clock;
    const [der] = pemBlocks(material.certPem, 'CERTIFICATE');
    if (!der) throw new MeshidError('ERR_CA_KEY_INVALID', 'ca-cert.pem: holds no PEM certificate');
    let key: KeyObject;
    try {
      key = createPrivateKey(material.keyPem);
    } catch (error) {
      throw new MeshidError('ERR_CA_KEY_INVALID', 'ca-key.pem: is not a PEM private key', { cause: error });
    }
    if (!new X509Certificate(der).checkPrivateKey(key)) throw new MeshidError('ERR_CA_KEY_INVALID', 'ca-key.pem: does not belong to ca-cert.pem');
    const algorithm = key.asymmetricKeyType === 'rsa' ? SIGNATURE_ALGORITHMS.rsa : key.asymmetricKeyType === 'ec' ? SIGNATURE_ALGORITHMS[key.asymmetricKeyDetails?.namedCurve as keyof typeof SIGNATURE_ALGORITHMS] : undefined;
    if (!algorithm) throw new MeshidError('ERR_CA_KEY_INVALID', `ca-key.pem: ${key.asymmetricKeyType ?? 'unknown'} keys cannot sign workload certificates; use RSA or ECDSA`);
    this.#key = key;
    this.#hash = algorithm.hash;
    this.#signatureAlgorithm = algorithm.der;

    const ca = readCertificate(der);
    const chain = material.chainPems.flatMap((pem) => pemBlocks(pem, 'CERTIFICATE'));
    this.#notBefore = ca.notBefore;
    // A leaf that outlived any certificate above it would fail validation from then on.
    this.#notAfter = Math.min(ca.notAfter, ...chain.map((c) => readCertificate(c).notAfter));
    this.#algorithmAndIssuer = Buffer.concat([algorithm.der, ca.subject]);
    // RFC 5280's first method when the CA has no SKI: SHA-1 of the subjectPublicKey bits, what OpenSSL computes too.
    const ski = ca.extensions.get(OID.subjectKeyIdentifier);
    const keyId = ski ? keyIdentifier(ski.value) : createHash('sha1').update(ca.publicKeyBits).digest();
    const aki = extension('2.5.29.35', false, sequence(tlv(0x80, keyId)));
    this.#extensions = { default: Buffer.concat([FIXED_EXTENSIONS.default, aki]), signatureOnly: Buffer.concat([FIXED_EXTENSIONS.signatureOnly, aki]) };
    this.#chain = [der, ...chain].map((c) => toPem('CERTIFICATE', c));
  }

  /** The leaf's latest possible notAfter: the earliest expiry in the CA's chain. */
  get notAfter(): Date {
    return new Date(this.#notAfter);
  }

  /** cert_chain as Istio's CA answers it: the leaf, the signing certificate, intermediates, the root last. */
  sign(request: SignRequest): string[] {
    return this.issue(request).chain;
  }

  /** The chain, plus what the issuance ledger keeps about the leaf. */
  issue(request: SignRequest): IssuedLeaf {
    const { publicKey, uri, ttlSeconds } = request;
    if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new MeshidError('ERR_INVALID_ARGUMENT', `ttlSeconds must be a positive number, not ${ttlSeconds}`);
    if (typeof uri !== 'string' || uri.length > MAX_URI_LENGTH || !PRINTABLE_ASCII.test(uri)) {
      throw new MeshidError('ERR_INVALID_ARGUMENT', 'the leaf URI must be printable ASCII without spaces');
    }
    const now = this.#clock.now();
    const notAfter = Math.min(now + Math.floor(ttlSeconds) * 1000, this.#notAfter);
    if (notAfter <= now) {
      throw new MeshidError('ERR_CA_KEY_INVALID', `the CA certificate expired at ${new Date(this.#notAfter).toISOString()}`, { hint: 'rotate the CA (meshid ca rotate or a new cacerts Secret)' });
    }
    const notBefore = Math.max(now - BACKDATE_MS, this.#notBefore);

    const spki = subjectPublicKeyInfo(publicKey);
    const extensions = publicKey.asymmetricKeyType === 'ed25519' ? this.#extensions.signatureOnly : this.#extensions.default;
    const san = sequence(SAN_OID, CRITICAL, tlv(TAG.OCTET_STRING, sequence(tlv(0x86, Buffer.from(uri, 'latin1')))));
    const serial = randomSerial();
    const tbs = sequence(
      VERSION_3,
      unsignedInteger(serial),
      this.#algorithmAndIssuer,
      sequence(encodeTime(notBefore), encodeTime(notAfter)),
      EMPTY_NAME,
      spki,
      tlv(0xa3, sequence(extensions, san)),
    );
    const signature = sign(this.#hash, tbs, this.#key);
    const leaf = sequence(tbs, this.#signatureAlgorithm, bitString(signature));
    return { chain: [toPem('CERTIFICATE', leaf), ...this.#chain], serial: serial.toString('hex'), notBefore, notAfter };
  }
}

// Serials come from a pooled buffer: one randomFillSync per 256 leaves instead of one per leaf.
const SERIAL_BYTES = 16;
const pool = Buffer.alloc(SERIAL_BYTES * 256);
let poolOffset = pool.length;

/** 128 random bits, never all zero: a leaf's serial before its DER encoding. */
function randomSerial(): Buffer {
  for (;;) {
    if (poolOffset === pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const bytes = pool.subarray(poolOffset, (poolOffset += SERIAL_BYTES));
    // Zero is not a valid serial (RFC 5280); at 2^-128 it never happens, but the loop costs nothing.
    if (bytes.some((b) => b !== 0)) return Buffer.from(bytes);
  }
}

/**
 * SubjectPublicKeyInfo from the key's JWK. With OpenSSL 3.0, Node's SPKI export goes through the
 * generic encoder and costs more than the leaf's signature; a JWK export and a few DER bytes
 * cost a few microseconds.
 */
function subjectPublicKeyInfo(key: KeyObject): Buffer {
  if (key.type !== 'public') throw new MeshidError('ERR_INVALID_ARGUMENT', 'the leaf needs a public key');
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
    const rsaKey = sequence(unsignedInteger(Buffer.from(jwk.n, 'base64url')), unsignedInteger(Buffer.from(jwk.e, 'base64url')));
    return sequence(KEY_ALGORITHMS.rsa, bitString(rsaKey));
  }
  if (jwk.kty === 'EC' && jwk.x && jwk.y && (jwk.crv === 'P-256' || jwk.crv === 'P-384' || jwk.crv === 'P-521')) {
    const size = EC_FIELD_BYTES[jwk.crv];
    const point = Buffer.alloc(1 + 2 * size);
    point[0] = 0x04;
    const x = Buffer.from(jwk.x, 'base64url');
    const y = Buffer.from(jwk.y, 'base64url');
    x.copy(point, 1 + size - x.length);
    y.copy(point, 1 + 2 * size - y.length);
    return sequence(KEY_ALGORITHMS[jwk.crv], bitString(point));
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && jwk.x) return sequence(KEY_ALGORITHMS.ed25519, bitString(Buffer.from(jwk.x, 'base64url')));
  throw new MeshidError('ERR_INVALID_ARGUMENT', `a ${key.asymmetricKeyType ?? 'unknown'} key cannot go in a workload certificate`);
}
