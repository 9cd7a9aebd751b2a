import { DerError, children, pemBlocks, readTlv, type Tlv } from '../pki/index.ts';

/** What the agent needs to know about the leaf the CA answered. */
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

const SAN_OID = Buffer.from([0x55, 0x1d, 0x11]); // 2.5.29.17

function expect(node: Tlv | undefined, tag: number, what: string): Tlv {
  if (!node || node.tag !== tag) throw new DerError(`${what} is missing`);
  return node;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 §4.1.2.5 fixes them. */
function readTime(der: Buffer, node: Tlv): number {
  const text = der.toString('latin1', node.content, node.end);
  const match = node.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : node.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!match) throw new DerError(`bad time ${JSON.stringify(text)}`);
  const [, y = '', mo = '', d = '', h = '', mi = '', s = ''] = match;
  const year = node.tag === 0x17 ? (Number(y) >= 50 ? 1900 : 2000) + Number(y) : Number(y);
  return Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
}

/** Reads serial, validity, public key and URI SANs of the first certificate in `pemText`. */
export function readLeaf(pemText: string): LeafFields {
  const der = pemBlocks(pemText, 'CERTIFICATE')[0];
  if (!der) throw new DerError('no PEM CERTIFICATE');
  const certificate = expect(readTlv(der, 0, der.length), 0x30, 'Certificate');
  const tbs = expect(children(der, certificate)[0], 0x30, 'tbsCertificate');
  const fields = children(der, tbs);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const serialNode = expect(fields[i++], 0x02, 'serialNumber');
  i += 2; // signature algorithm, issuer
  const validity = expect(fields[i++], 0x30, 'validity');
  const [from, to] = children(der, validity);
  if (!from || !to) throw new DerError('validity is incomplete');
  i += 1; // subject
  const spki = expect(fields[i++], 0x30, 'subjectPublicKeyInfo');
  const uris: string[] = [];
  const extensions = fields.slice(i).find((f) => f.tag === 0xa3);
  if (extensions) {
    for (const extension of children(der, expect(children(der, extensions)[0], 0x30, 'extensions'))) {
      const parts = children(der, extension);
      const id = parts[0];
      if (!id || id.tag !== 0x06 || !der.subarray(id.content, id.end).equals(SAN_OID)) continue;
      const value = expect(parts.at(-1), 0x04, 'subjectAltName value');
      const names = expect(readTlv(der, value.content, value.end), 0x30, 'GeneralNames');
      for (const name of children(der, names)) if (name.tag === 0x86) uris.push(der.toString('latin1', name.content, name.end));
    }
  }
  let serial = der.toString('hex', serialNode.content, serialNode.end).toUpperCase();
  if (serial.length > 2 && serial.startsWith('00')) serial = serial.slice(2);
  return { serial, notBefore: readTime(der, from), notAfter: readTime(der, to), spki: Buffer.from(der.subarray(spki.start, spki.end)), uris };
}
