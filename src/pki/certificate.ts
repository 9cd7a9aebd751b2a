import { DerError, TAG, bitStringBytes, children, contentOf, expectTlv, oidHex, oidKey, pemBlocks, readRoot, readTime, readTlv, slice } from './der.ts';

export const OID = {
  subjectKeyIdentifier: oidHex('2.5.29.14'),
  keyUsage: oidHex('2.5.29.15'),
  subjectAltName: oidHex('2.5.29.17'),
  basicConstraints: oidHex('2.5.29.19'),
  authorityKeyIdentifier: oidHex('2.5.29.35'),
  extKeyUsage: oidHex('2.5.29.37'),
} as const;

export interface Extension {
  critical: boolean;
  /** The extnValue's content: the DER of the extension's own structure. */
  value: Buffer;
}

/** The raw pieces of a certificate the CA reuses byte for byte (names, key) or checks. */
export interface CertificateFields {
  /** The serialNumber INTEGER's content bytes. */
  serial: Buffer;
  subject: Buffer;
  issuer: Buffer;
  spki: Buffer;
  /** The subjectPublicKey bits, what a key identifier is hashed from. */
  publicKeyBits: Buffer;
  notBefore: number;
  notAfter: number;
  extensions: Map<string, Extension>;
}

/** Reads an X.509 v3 certificate's TBS fields; throws DerError on anything malformed. */
export function readCertificate(der: Buffer): CertificateFields {
  const cert = readRoot(der, TAG.SEQUENCE, 'Certificate');
  const [tbs] = children(der, cert);
  if (tbs?.tag !== TAG.SEQUENCE) throw new DerError('Certificate: missing TBSCertificate');
  const fields = children(der, tbs);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version
  const serial = fields[i++];
  const algorithm = fields[i++];
  const issuer = fields[i++];
  const validity = fields[i++];
  const subject = fields[i++];
  const spki = fields[i++];
  if (serial?.tag !== TAG.INTEGER || algorithm?.tag !== TAG.SEQUENCE || issuer?.tag !== TAG.SEQUENCE || validity?.tag !== TAG.SEQUENCE || subject?.tag !== TAG.SEQUENCE || spki?.tag !== TAG.SEQUENCE) {
    throw new DerError('Certificate: TBSCertificate fields out of order');
  }
  const [notBefore, notAfter] = children(der, validity);
  if (!notBefore || !notAfter) throw new DerError('Certificate: incomplete validity');
  const [, keyBits] = children(der, spki);
  if (!keyBits) throw new DerError('Certificate: incomplete subjectPublicKeyInfo');
  const extensions = new Map<string, Extension>();
  for (const field of fields.slice(i)) {
    if (field.tag !== 0xa3) continue; // issuer/subject unique IDs are not used
    const list = expectTlv(der, field.content, field.end, TAG.SEQUENCE, 'Extensions');
    for (const ext of children(der, list)) {
      const parts = children(der, ext);
      const [id, second, third] = parts;
      if (!id) throw new DerError('Extension: empty');
      const critical = second?.tag === TAG.BOOLEAN && der[second.content] !== 0;
      const value = second?.tag === TAG.BOOLEAN ? third : second;
      if (value?.tag !== TAG.OCTET_STRING) throw new DerError('Extension: missing extnValue');
      const key = oidKey(der, id);
      if (extensions.has(key)) throw new DerError('Extension: repeated');
      extensions.set(key, { critical, value: contentOf(der, value) });
    }
  }
  return {
    serial: contentOf(der, serial),
    subject: slice(der, subject),
    issuer: slice(der, issuer),
    spki: slice(der, spki),
    publicKeyBits: bitStringBytes(der, keyBits),
    notBefore: readTime(der, notBefore),
    notAfter: readTime(der, notAfter),
    extensions,
  };
}

/** keyUsage bits as a number with bit 0 = digitalSignature … bit 8 = decipherOnly (RFC 5280 order). */
export function keyUsageBits(value: Buffer): number {
  const bits = readRoot(value, TAG.BIT_STRING, 'KeyUsage');
  const unused = value[bits.content] ?? 0;
  let flags = 0;
  for (let byte = bits.content + 1, index = 0; byte < bits.end; byte++, index++) {
    const v = value[byte] ?? 0;
    for (let bit = 0; bit < 8; bit++) if (v & (0x80 >> bit)) flags |= 1 << (index * 8 + bit);
  }
  if (unused > 7) throw new DerError('KeyUsage: bad unused-bits count');
  return flags;
}

export const KEY_USAGE = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
} as const;

export function keyUsageNames(flags: number): string[] {
  return Object.entries(KEY_USAGE)
    .filter(([, bit]) => flags & bit)
    .map(([name]) => name);
}

/** basicConstraints cA (DEFAULT FALSE). */
export function basicConstraintsCa(value: Buffer): boolean {
  const seq = readRoot(value, TAG.SEQUENCE, 'BasicConstraints');
  if (seq.content === seq.end) return false;
  const first = readTlv(value, seq.content, seq.end);
  return first.tag === TAG.BOOLEAN && value[first.content] !== 0;
}

/** subjectKeyIdentifier's key id. */
export function keyIdentifier(value: Buffer): Buffer {
  return contentOf(value, readRoot(value, TAG.OCTET_STRING, 'SubjectKeyIdentifier'));
}

/** subjectAltName's uniformResourceIdentifier names (SPIFFE IDs); other kinds are skipped. */
export function uriNames(value: Buffer): string[] {
  const names = readRoot(value, TAG.SEQUENCE, 'GeneralNames');
  return children(value, names)
    .filter((name) => name.tag === 0x86) // [6] IMPLICIT IA5String
    .map((name) => value.toString('latin1', name.content, name.end));
}

/** What a workload needs to know about the leaf the CA answered. */
export interface LeafFields {
  /** Hexadecimal, upper case, as X509Certificate prints it. */
  serial: string;
  notBefore: number;
  notAfter: number;
  /** The SubjectPublicKeyInfo, DER, to compare with the key the CSR carried. */
  spki: Buffer;
  /** The URI SANs. */
  uris: string[];
}

/** Serial, validity, public key and URI SANs of the first certificate in `pemText`; DerError on anything malformed. */
export function readLeaf(pemText: string): LeafFields {
  const der = pemBlocks(pemText, 'CERTIFICATE')[0];
  if (!der) throw new DerError('no PEM CERTIFICATE');
  const fields = readCertificate(der);
  const san = fields.extensions.get(OID.subjectAltName);
  let serial = fields.serial.toString('hex').toUpperCase();
  if (serial.length > 2 && serial.startsWith('00')) serial = serial.slice(2);
  return { serial, notBefore: fields.notBefore, notAfter: fields.notAfter, spki: fields.spki, uris: san ? uriNames(san.value) : [] };
}
