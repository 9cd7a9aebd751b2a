// The few DER pieces the CA and the agent need, read and written by hand. The CA signs
// certificates and the agent writes CSRs on hot paths where a general ASN.1 library (schema
// objects, ArrayBuffer copies) would cost more than OpenSSL's signature itself, and the
// structures involved are small and fixed.

/** A malformed encoding; the module that called the reader turns it into its own MeshidError. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One element: its tag and where its header and content sit in the buffer it was read from. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  content: number;
  /** Offset just past the content. */
  end: number;
}

/**
 * Reads the element at `pos`, which must end by `limit`. Only what DER allows: single-byte
 * tags, definite lengths in their shortest form.
 */
export function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated element');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used here');
  let length = buf[pos + 1] as number;
  let content = pos + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    // Four length bytes already allow 4 GiB; anything we read is far smaller.
    if (count === 0 || count > 4) throw new DerError(count === 0 ? 'indefinite length' : 'length too large');
    if (content + count > limit) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (buf[content + i] as number);
    if (length < 0x80 || (count > 1 && buf[content] === 0)) throw new DerError('length not in its shortest form');
    content += count;
  }
  const end = content + length;
  if (end > limit) throw new DerError('element runs past its parent');
  return { tag, start: pos, content, end };
}

/** Reads an element and checks its tag. */
export function expectTlv(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  const tlv = readTlv(buf, pos, limit);
  if (tlv.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)}`);
  return tlv;
}

/** The elements inside a constructed element, in order. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.content; pos < parent.end; ) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** Reads a whole buffer as exactly one element, with nothing after it. */
export function readRoot(buf: Uint8Array, tag: number, what: string): Tlv {
  const tlv = expectTlv(buf, 0, buf.length, tag, what);
  if (tlv.end !== buf.length) throw new DerError(`${what}: trailing bytes`);
  return tlv;
}

/** An OID's content bytes as hex: cheap to compute and to look up in a table. */
export function oidKey(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== TAG.OID) throw new DerError('expected an OBJECT IDENTIFIER');
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.content, tlv.end - tlv.content).toString('hex');
}

/** Dotted form of an OID given as content hex (for messages only). */
export function oidText(key: string): string {
  const bytes = Buffer.from(key, 'hex');
  const arcs: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** The content hex of a dotted OID (the inverse of oidText), for building lookup tables. */
export function oidHex(dotted: string): string {
  return encodeOid(dotted).subarray(2).toString('hex');
}

export function slice(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start);
}

export function contentOf(buf: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.content, tlv.end - tlv.content);
}

/** A BIT STRING's bits without the leading unused-bits byte; whole bytes only, as keys and signatures are. */
export function bitStringBytes(buf: Uint8Array, tlv: Tlv): Buffer {
  if (tlv.tag !== TAG.BIT_STRING || tlv.end === tlv.content || buf[tlv.content] !== 0) throw new DerError('expected a BIT STRING of whole bytes');
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.content + 1, tlv.end - tlv.content - 1);
}

/** Reads UTCTime or GeneralizedTime (the forms RFC 5280 allows: seconds, 'Z'). */
export function readTime(buf: Uint8Array, tlv: Tlv): number {
  const text = Buffer.from(buf.buffer, buf.byteOffset + tlv.content, tlv.end - tlv.content).toString('latin1');
  const match = tlv.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : tlv.tag === TAG.GENERALIZED_TIME ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!match) throw new DerError('expected a UTCTime or GeneralizedTime');
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  const year = tlv.tag === TAG.UTC_TIME ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  return Date.UTC(year, mo - 1, d, h, mi, s);
}

// --- Writing -------------------------------------------------------------------------

/** Size of a header (tag and length) for content of `length` bytes. */
export function headerSize(length: number): number {
  return length < 0x80 ? 2 : length < 0x100 ? 3 : length < 0x10000 ? 4 : length < 0x1000000 ? 5 : 6;
}

/** Writes a tag and length at `pos`; answers where the content starts. */
export function writeHeader(out: Uint8Array, pos: number, tag: number, length: number): number {
  out[pos++] = tag;
  if (length < 0x80) {
    out[pos++] = length;
    return pos;
  }
  const count = headerSize(length) - 2;
  out[pos++] = 0x80 | count;
  for (let i = count - 1; i >= 0; i--) out[pos++] = Math.floor(length / 256 ** i) & 0xff;
  return pos;
}

/** One element from its content pieces; for templates and tests, not the hottest loop. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = Buffer.allocUnsafe(headerSize(length) + length);
  let pos = writeHeader(out, 0, tag, length);
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

export function sequence(...parts: Uint8Array[]): Buffer {
  return tlv(TAG.SEQUENCE, ...parts);
}

export function set(...parts: Uint8Array[]): Buffer {
  return tlv(TAG.SET, ...parts);
}

export const nullValue = (): Buffer => tlv(TAG.NULL);
export const booleanTrue = (): Buffer => tlv(TAG.BOOLEAN, Uint8Array.of(0xff));

/** An ECDSA signature as WebCrypto gives it (r‖s, fixed width) in X.509's form, SEQUENCE { r, s }. */
export function ecdsaSignatureDer(p1363: Uint8Array): Buffer {
  const half = p1363.length / 2;
  return sequence(unsignedInteger(p1363.subarray(0, half)), unsignedInteger(p1363.subarray(half)));
}

export function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const groups = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return tlv(TAG.OID, Uint8Array.from(bytes));
}

/** A non-negative INTEGER from big-endian magnitude bytes, in its shortest form. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const body = magnitude.subarray(start);
  return (body[0] ?? 0) & 0x80 ? tlv(TAG.INTEGER, Uint8Array.of(0), body) : tlv(TAG.INTEGER, body.length ? body : Uint8Array.of(0));
}

export function bitString(bytes: Uint8Array): Buffer {
  return tlv(TAG.BIT_STRING, Uint8Array.of(0), bytes);
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, bytes);
}

/** An X.509 extension: SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(encodeOid(oid), Uint8Array.of(TAG.BOOLEAN, 1, 0xff), octetString(value)) : sequence(encodeOid(oid), octetString(value));
}

/** UTCTime for 1950–2049 and GeneralizedTime otherwise, whole seconds, as RFC 5280 requires. */
export function encodeTime(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  return year >= 1950 && year < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(`${two(year % 100)}${rest}`, 'latin1')) : tlv(TAG.GENERALIZED_TIME, Buffer.from(`${year}${rest}`, 'latin1'));
}

// --- PEM -----------------------------------------------------------------------------

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return `${out}-----END ${label}-----\n`;
}

/**
 * The CERTIFICATE blocks of a PEM bundle, each ending in exactly one newline, so that
 * joining them gives a bundle again and equal certificates compare equal as text.
 */
export function splitPem(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\r?\n?/g) ?? []).map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`));
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]*?)-----END \1-----/g;

/** The DER of every PEM block with this label, in order; text between blocks is ignored, as OpenSSL does. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    if (match[1] === label) out.push(Buffer.from(match[2] ?? '', 'base64'));
  }
  return out;
}
