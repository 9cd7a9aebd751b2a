// The few DER encodings the agent writes (a CSR) and reads (the fields of the leaf the CA
// answers), by hand: the agent does both for every identity at every renewal, and a general
// ASN.1 library, or OpenSSL 3's decoders behind X509Certificate, costs several times the
// signature itself on the thread that also serves every stream.

/** A malformed encoding; callers turn it into their own MeshidError. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One element: tag, length, content. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, ...items);
/** A small non-negative INTEGER (0 to 127), all a CSR's version needs. */
export const smallInteger = (n: number): Buffer => tlv(0x02, Buffer.from([n & 0x7f]));
export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
export const booleanTrue = (): Buffer => tlv(0x01, Buffer.from([0xff]));
export const nullValue = (): Buffer => tlv(0x05);
/** A BIT STRING holding whole bytes. */
export const bitString = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), bytes);

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const groups: number[] = [];
    for (let v = arc; ; v = Math.floor(v / 128)) {
      groups.unshift((v & 0x7f) | (groups.length > 0 ? 0x80 : 0));
      if (v < 128) break;
    }
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** An ECDSA signature as WebCrypto gives it (r‖s, fixed width) in X.509's form, SEQUENCE { r, s }. */
export function ecdsaSignatureDer(p1363: Uint8Array): Buffer {
  const half = p1363.length / 2;
  const integer = (bytes: Uint8Array): Buffer => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i += 1;
    const trimmed = bytes.subarray(i);
    // A set high bit would read as negative: DER puts a zero byte in front.
    return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
  };
  return sequence(integer(p1363.subarray(0, half)), integer(p1363.subarray(half)));
}

/** Wraps DER in PEM armour, 64 characters a line. */
export function pem(label: string, der: Uint8Array): string {
  const body = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body}${body.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/** The DER inside the first PEM block with this label. */
export function pemBody(text: string, label: string): Buffer {
  const begin = `-----BEGIN ${label}-----`;
  const start = text.indexOf(begin);
  const end = text.indexOf(`-----END ${label}-----`, start);
  if (start < 0 || end < 0) throw new DerError(`no PEM ${label}`);
  return Buffer.from(text.slice(start + begin.length, end).replace(/\s+/g, ''), 'base64');
}

/** One element read: its tag and where its content sits. */
export interface Tlv {
  tag: number;
  start: number;
  content: number;
  end: number;
}

/** Reads the element at `pos`, which must end by `limit` (definite lengths only, as DER has). */
export function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated element');
  const tag = buf[pos] as number;
  let size = buf[pos + 1] as number;
  let content = pos + 2;
  if (size & 0x80) {
    const count = size & 0x7f;
    if (count === 0 || count > 4 || content + count > limit) throw new DerError('bad length');
    size = 0;
    for (let i = 0; i < count; i++) size = size * 256 + (buf[content + i] as number);
    content += count;
  }
  const end = content + size;
  if (end > limit) throw new DerError('element runs past its parent');
  return { tag, start: pos, content, end };
}

/** The elements inside a constructed one. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.content; pos < parent.end; ) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}
