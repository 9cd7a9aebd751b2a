import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { MeshidError } from '../core/index.ts';
import { DerError, KEY_USAGE, OID, TAG, basicConstraintsCa, bitStringBytes, children, contentOf, keyUsageBits, keyUsageNames, oidHex, oidKey, oidText, readRoot, type Tlv } from '../pki/index.ts';

/** Far above any real CSR (an RSA-8192 one is under 3 KiB of PEM); the cap bounds the parser's work. */
export const MAX_CSR_BYTES = 16 * 1024;

export interface CheckedCsr {
  /** The requester's key, proven by the CSR's self-signature; the only thing taken from the CSR. */
  publicKey: KeyObject;
}

/**
 * Parses a PEM PKCS#10 request, checks its self-signature and what it asks for. Nothing the
 * CSR names ends up in the certificate, yet a request for anything beyond `expected` (the
 * identity the caller's token proved) is refused rather than quietly narrowed: a workload that
 * asks for more is misconfigured or hostile, and either way its operator should hear of it.
 *
 * Accepted: an empty subject, or Istio's `O=` with an empty value (its agent always sends
 * that); no SAN, or one URI SAN equal to `expected`; keyUsage, extKeyUsage and
 * basicConstraints only within what the leaf gets anyway; subjectKeyIdentifier. Keys: EC P-256
 * or P-384, RSA 2048–8192 bits, Ed25519.
 */
export function checkCsr(pem: string, expected: string): CheckedCsr {
  if (typeof pem !== 'string' || pem.length === 0) throw invalid('the request has no CSR');
  if (pem.length > MAX_CSR_BYTES) {
    throw new MeshidError('ERR_CSR_TOO_LARGE', `the CSR is ${pem.length} bytes; at most ${MAX_CSR_BYTES} are accepted`);
  }
  const der = decodePem(pem);
  let csr: ParsedCsr;
  try {
    csr = parseCsr(der);
  } catch (error) {
    if (error instanceof DerError) throw invalid(`the CSR is not a PKCS#10 request (${error.message})`, error);
    throw error;
  }
  checkRequest(csr, expected);
  const publicKey = importKey(csr.key);
  let verified = false;
  try {
    verified = verify(csr.hash, csr.signed, publicKey, csr.signature);
  } catch {
    // OpenSSL throws on some malformed signatures instead of answering false: the same verdict.
  }
  if (!verified) throw invalid('the CSR signature does not verify with its own public key');
  return { publicKey };
}

interface ParsedCsr {
  /** CertificationRequestInfo, the signed bytes. */
  signed: Buffer;
  subject: Attribute[];
  extensions: Map<string, Buffer>;
  attributes: string[];
  key: KeyParts;
  hash: string | null;
  signature: Buffer;
}

interface Attribute {
  oid: string;
  tag: number;
  value: Buffer;
}

type KeyParts =
  | { type: 'rsa'; n: Buffer; e: Buffer; bits: number }
  | { type: 'ec'; crv: 'P-256' | 'P-384'; x: Buffer; y: Buffer }
  | { type: 'ed25519'; x: Buffer };

function invalid(message: string, cause?: unknown): MeshidError {
  return new MeshidError('ERR_CSR_INVALID', message, cause === undefined ? {} : { cause });
}

function refused(what: string, expected: string): MeshidError {
  return new MeshidError('ERR_CSR_IDENTITY', `the CSR asks for ${what}; this CA signs ${expected} for this caller and nothing else`, {
    hint: 'send a CSR with an empty subject and at most one URI SAN, the SPIFFE ID of the pod\'s service account',
  });
}

const BEGIN = '-----BEGIN CERTIFICATE REQUEST-----';
const END = '-----END CERTIFICATE REQUEST-----';
const BASE64_BODY = /^[A-Za-z0-9+/=\s]*$/;
const BLANK = /^\s*$/;

function decodePem(pem: string): Buffer {
  const begin = pem.indexOf(BEGIN);
  const end = begin < 0 ? -1 : pem.indexOf(END, begin);
  if (begin < 0 || end < 0) throw invalid('the CSR is not PEM (expected a "CERTIFICATE REQUEST" block)');
  const body = pem.slice(begin + BEGIN.length, end);
  // One block and nothing else: a second request appended could mean a confused client.
  if (!BLANK.test(pem.slice(0, begin)) || !BLANK.test(pem.slice(end + END.length)) || !BASE64_BODY.test(body)) {
    throw invalid('the CSR PEM must hold exactly one "CERTIFICATE REQUEST" block of base64');
  }
  const der = Buffer.from(body, 'base64');
  if (der.length === 0) throw invalid('the CSR PEM block is empty');
  return der;
}

const OIDS = {
  extensionRequest: oidHex('1.2.840.113549.1.9.14'),
  rsaEncryption: oidHex('1.2.840.113549.1.1.1'),
  ecPublicKey: oidHex('1.2.840.10045.2.1'),
  ed25519: oidHex('1.3.101.112'),
  p256: oidHex('1.2.840.10045.3.1.7'),
  p384: oidHex('1.3.132.0.34'),
  organization: oidHex('2.5.4.10'),
  serverAuth: oidHex('1.3.6.1.5.5.7.3.1'),
  clientAuth: oidHex('1.3.6.1.5.5.7.3.2'),
};

const SIGNATURES = new Map<string, { key: KeyParts['type']; hash: string | null }>([
  [oidHex('1.2.840.113549.1.1.11'), { key: 'rsa', hash: 'sha256' }],
  [oidHex('1.2.840.113549.1.1.12'), { key: 'rsa', hash: 'sha384' }],
  [oidHex('1.2.840.113549.1.1.13'), { key: 'rsa', hash: 'sha512' }],
  [oidHex('1.2.840.10045.4.3.2'), { key: 'ec', hash: 'sha256' }],
  [oidHex('1.2.840.10045.4.3.3'), { key: 'ec', hash: 'sha384' }],
  [oidHex('1.2.840.10045.4.3.4'), { key: 'ec', hash: 'sha512' }],
  [OIDS.ed25519, { key: 'ed25519', hash: null }],
]);

/** Short names for the subject attributes people put in CSRs, for refusal messages. */
const ATTRIBUTE_NAMES = new Map<string, string>(
  Object.entries({
    '2.5.4.3': 'CN',
    '2.5.4.5': 'serialNumber',
    '2.5.4.6': 'C',
    '2.5.4.7': 'L',
    '2.5.4.8': 'ST',
    '2.5.4.10': 'O',
    '2.5.4.11': 'OU',
    '1.2.840.113549.1.9.1': 'emailAddress',
    '0.9.2342.19200300.100.1.1': 'UID',
    '0.9.2342.19200300.100.1.25': 'DC',
  }).map(([dotted, name]) => [oidHex(dotted), name]),
);

const CSR_ATTRIBUTE_NAMES = new Map<string, string>([
  [oidHex('1.2.840.113549.1.9.7'), 'challengePassword'],
  [oidHex('1.2.840.113549.1.9.2'), 'unstructuredName'],
]);

const STRING_TAGS = new Set<number>([TAG.UTF8_STRING, TAG.PRINTABLE_STRING, TAG.IA5_STRING, 0x14 /* T61 */, 0x1e /* BMP */, 0x1c /* Universal */]);

function parseCsr(der: Buffer): ParsedCsr {
  const root = readRoot(der, TAG.SEQUENCE, 'CertificationRequest');
  const [info, algorithm, signature, extra] = children(der, root);
  if (!info || !algorithm || !signature || extra) throw new DerError('CertificationRequest must have exactly three fields');
  expectTag(info, TAG.SEQUENCE, 'CertificationRequestInfo');
  expectTag(algorithm, TAG.SEQUENCE, 'signatureAlgorithm');

  const [version, subject, spki, attributes, more] = children(der, info);
  if (!version || !subject || !spki || more) throw new DerError('CertificationRequestInfo has the wrong number of fields');
  if (version.tag !== TAG.INTEGER || version.end - version.content !== 1 || der[version.content] !== 0) throw new DerError('version must be 0 (v1)');
  expectTag(subject, TAG.SEQUENCE, 'subject');
  expectTag(spki, TAG.SEQUENCE, 'subjectPKInfo');
  // PKCS#10 makes attributes mandatory ([0] IMPLICIT SET, possibly empty); a few encoders drop an empty one.
  if (attributes) expectTag(attributes, 0xa0, 'attributes');

  const key = parseKey(der, spki);
  const [sigOid, sigParams, sigExtra] = children(der, algorithm);
  if (!sigOid || sigExtra) throw new DerError('signatureAlgorithm is malformed');
  const sigKey = oidKey(der, sigOid);
  const scheme = SIGNATURES.get(sigKey);
  if (!scheme) throw new DerError(`signature algorithm ${oidText(sigKey)} is not supported`);
  // RSA PKCS#1 v1.5 carries NULL parameters (or, from some encoders, none); ECDSA and Ed25519 none.
  if (sigParams && !(scheme.key === 'rsa' && sigParams.tag === TAG.NULL && sigParams.end === sigParams.content)) {
    throw new DerError('unexpected signature algorithm parameters');
  }
  if (scheme.key !== key.type) throw new DerError(`a ${oidText(sigKey)} signature does not go with a ${key.type} key`);

  const parsed: ParsedCsr = {
    signed: Buffer.from(der.buffer, der.byteOffset + info.start, info.end - info.start),
    subject: parseName(der, subject),
    extensions: new Map(),
    attributes: [],
    key,
    hash: scheme.hash,
    signature: bitStringBytes(der, signature),
  };
  for (const attribute of attributes ? children(der, attributes) : []) {
    expectTag(attribute, TAG.SEQUENCE, 'Attribute');
    const [type, values, rest] = children(der, attribute);
    if (!type || !values || rest || values.tag !== TAG.SET) throw new DerError('Attribute is malformed');
    const id = oidKey(der, type);
    if (id !== OIDS.extensionRequest) {
      parsed.attributes.push(id);
      continue;
    }
    if (parsed.extensions.size > 0) throw new DerError('extensionRequest appears twice');
    const [list, second] = children(der, values);
    if (!list || second) throw new DerError('extensionRequest must hold one Extensions value');
    expectTag(list, TAG.SEQUENCE, 'Extensions');
    for (const ext of children(der, list)) {
      expectTag(ext, TAG.SEQUENCE, 'Extension');
      const [extId, a, b, c] = children(der, ext);
      const value = a?.tag === TAG.BOOLEAN ? b : a;
      if (!extId || !value || value.tag !== TAG.OCTET_STRING || (a?.tag === TAG.BOOLEAN ? c : b)) throw new DerError('Extension is malformed');
      const extKey = oidKey(der, extId);
      if (parsed.extensions.has(extKey)) throw new DerError(`extension ${oidText(extKey)} appears twice`);
      parsed.extensions.set(extKey, contentOf(der, value));
    }
  }
  return parsed;
}

function expectTag(tlv: Tlv, tag: number, what: string): void {
  if (tlv.tag !== tag) throw new DerError(`${what}: unexpected tag 0x${tlv.tag.toString(16)}`);
}

function parseName(der: Buffer, name: Tlv): Attribute[] {
  const out: Attribute[] = [];
  for (const rdn of children(der, name)) {
    expectTag(rdn, TAG.SET, 'RelativeDistinguishedName');
    for (const atv of children(der, rdn)) {
      expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue');
      const [type, value, rest] = children(der, atv);
      if (!type || !value || rest) throw new DerError('AttributeTypeAndValue is malformed');
      out.push({ oid: oidKey(der, type), tag: value.tag, value: contentOf(der, value) });
    }
  }
  return out;
}

function parseKey(der: Buffer, spki: Tlv): KeyParts {
  const [algorithm, bits, rest] = children(der, spki);
  if (!algorithm || !bits || rest) throw new DerError('subjectPKInfo is malformed');
  expectTag(algorithm, TAG.SEQUENCE, 'subjectPKInfo algorithm');
  const [oid, params, more] = children(der, algorithm);
  if (!oid || more) throw new DerError('subjectPKInfo algorithm is malformed');
  const keyBytes = bitStringBytes(der, bits);
  const type = oidKey(der, oid);

  if (type === OIDS.rsaEncryption) {
    if (params && !(params.tag === TAG.NULL && params.end === params.content)) throw new DerError('RSA key parameters must be NULL');
    const seq = readRoot(keyBytes, TAG.SEQUENCE, 'RSAPublicKey');
    const [n, e, extra] = children(keyBytes, seq);
    if (!n || !e || extra) throw new DerError('RSAPublicKey is malformed');
    const modulus = positiveInteger(keyBytes, n, 'modulus');
    const exponent = positiveInteger(keyBytes, e, 'public exponent');
    const size = (modulus.length - 1) * 8 + (32 - Math.clz32(modulus[0] ?? 0));
    if (size < 2048) throw invalid(`the CSR's RSA key has ${size} bits; at least 2048 are required`);
    if (size > 8192) throw invalid(`the CSR's RSA key has ${size} bits; at most 8192 are accepted`);
    if (((exponent[exponent.length - 1] ?? 0) & 1) === 0 || (exponent.length === 1 && exponent[0] === 1)) throw new DerError('RSA public exponent must be odd and greater than 1');
    return { type: 'rsa', n: modulus, e: exponent, bits: size };
  }
  if (type === OIDS.ecPublicKey) {
    if (params?.tag !== TAG.OID) throw invalid('the CSR\'s EC key must name its curve (P-256 or P-384)');
    const curve = oidKey(der, params);
    const crv = curve === OIDS.p256 ? 'P-256' : curve === OIDS.p384 ? 'P-384' : undefined;
    if (!crv) throw invalid(`the CSR's EC key is on curve ${oidText(curve)}; P-256 and P-384 are accepted`);
    const size = crv === 'P-256' ? 32 : 48;
    if (keyBytes.length !== 1 + 2 * size || keyBytes[0] !== 0x04) throw invalid(`the CSR's ${crv} key must be an uncompressed point`);
    return { type: 'ec', crv, x: keyBytes.subarray(1, 1 + size), y: keyBytes.subarray(1 + size) };
  }
  if (type === OIDS.ed25519) {
    if (params || keyBytes.length !== 32) throw new DerError('Ed25519 key is malformed');
    return { type: 'ed25519', x: keyBytes };
  }
  throw invalid(`the CSR's key type ${oidText(type)} is not supported; use EC P-256/P-384, RSA (2048 bits or more) or Ed25519`);
}

function positiveInteger(buf: Buffer, tlv: Tlv, what: string): Buffer {
  if (tlv.tag !== TAG.INTEGER || tlv.end === tlv.content) throw new DerError(`${what} must be an INTEGER`);
  let start = tlv.content;
  if ((buf[start] ?? 0) & 0x80) throw new DerError(`${what} must be positive`);
  if (buf[start] === 0) {
    if (start + 1 < tlv.end && ((buf[start + 1] ?? 0) & 0x80) === 0) throw new DerError(`${what} is not in its shortest form`);
    start++;
  }
  if (start === tlv.end) throw new DerError(`${what} must not be zero`);
  return buf.subarray(start, tlv.end);
}

/**
 * Through JWK rather than DER on purpose: with OpenSSL 3.0, Node's SPKI import goes through
 * the generic decoder and costs 10–30 times more than a JWK import for RSA and Ed25519 (and
 * still more than JWK for EC), which on this path would dominate the whole request.
 */
function importKey(key: KeyParts): KeyObject {
  const jwk: JsonWebKey =
    key.type === 'rsa'
      ? { kty: 'RSA', n: key.n.toString('base64url'), e: key.e.toString('base64url') }
      : key.type === 'ec'
        ? { kty: 'EC', crv: key.crv, x: key.x.toString('base64url'), y: key.y.toString('base64url') }
        : { kty: 'OKP', crv: 'Ed25519', x: key.x.toString('base64url') };
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (error) {
    // e.g. an EC point that is not on the curve
    throw invalid(`the CSR's ${key.type} public key is not valid`, error);
  }
}

const ALLOWED_KEY_USAGE = KEY_USAGE.digitalSignature | KEY_USAGE.keyEncipherment;

function checkRequest(csr: ParsedCsr, expected: string): void {
  for (const part of csr.subject) {
    // Istio's agent builds its CSR subject from an Organization list holding one empty string.
    if (part.oid === OIDS.organization && part.value.length === 0 && STRING_TAGS.has(part.tag)) continue;
    const name = ATTRIBUTE_NAMES.get(part.oid) ?? oidText(part.oid);
    throw refused(`subject ${name}=${JSON.stringify(printable(part.value))} (workload certificates have an empty subject)`, expected);
  }
  const [attribute] = csr.attributes;
  if (attribute) throw refused(`CSR attribute ${CSR_ATTRIBUTE_NAMES.get(attribute) ?? oidText(attribute)}`, expected);
  for (const [oid, value] of csr.extensions) {
    try {
      checkExtension(oid, value, expected);
    } catch (error) {
      if (error instanceof DerError) throw invalid(`the CSR's extension ${oidText(oid)} is malformed (${error.message})`, error);
      throw error;
    }
  }
}

function checkExtension(oid: string, value: Buffer, expected: string): void {
  switch (oid) {
    case OID.subjectAltName:
      return checkSan(value, expected);
    case OID.basicConstraints:
      if (basicConstraintsCa(value)) throw refused('basicConstraints CA:true', expected);
      return;
    case OID.keyUsage: {
      const extra = keyUsageBits(value) & ~ALLOWED_KEY_USAGE;
      if (extra) throw refused(`keyUsage ${keyUsageNames(extra).join(', ')}`, expected);
      return;
    }
    case OID.extKeyUsage: {
      const seq = readRoot(value, TAG.SEQUENCE, 'ExtKeyUsage');
      for (const purpose of children(value, seq)) {
        const id = oidKey(value, purpose);
        if (id !== OIDS.serverAuth && id !== OIDS.clientAuth) throw refused(`extended key usage ${oidText(id)}`, expected);
      }
      return;
    }
    case OID.subjectKeyIdentifier:
      return; // describes the requester's own key; the CA computes its own
    default:
      throw refused(`extension ${oidText(oid)}`, expected);
  }
}

const GENERAL_NAMES: Record<number, string> = {
  0xa0: 'an otherName',
  0x81: 'email address',
  0x82: 'DNS name',
  0xa3: 'an x400Address',
  0xa4: 'a directory name',
  0xa5: 'an ediPartyName',
  0x86: 'URI',
  0x87: 'IP address',
  0x88: 'a registered ID',
};

function checkSan(value: Buffer, expected: string): void {
  const seq = readRoot(value, TAG.SEQUENCE, 'SubjectAltName');
  const names = children(value, seq);
  if (names.length === 0) throw new DerError('SubjectAltName must not be empty');
  for (const name of names) {
    const content = contentOf(value, name);
    switch (name.tag) {
      case 0x86: {
        const uri = content.toString('latin1');
        if (uri !== expected) throw refused(`URI ${JSON.stringify(printable(content))}`, expected);
        break;
      }
      case 0x82:
      case 0x81:
        throw refused(`${GENERAL_NAMES[name.tag]} ${JSON.stringify(printable(content))}`, expected);
      case 0x87:
        throw refused(`IP address ${ipText(content)}`, expected);
      default:
        throw refused(`${GENERAL_NAMES[name.tag] ?? 'an unknown kind of'} subject alternative name`, expected);
    }
  }
  if (names.length > 1) throw refused(`${names.length} URI SANs`, expected);
}

function printable(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) return (bytes.toString('hex').match(/.{4}/g) ?? []).join(':');
  return `(${bytes.length} bytes)`;
}
