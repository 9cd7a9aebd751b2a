/**
 * A deterministic tar writer and a minimal reader (docs/adr/0003-own-tar-writer.md says why
 * meshid writes tar itself). Entries come out in the order given, with the owner, mode and
 * mtime the caller chose and nothing taken from the build machine, so the same input gives
 * the same bytes, and so the same layer digest.
 */

export type TarEntry =
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; data: Buffer }
  | { type: 'dir'; path: string; mode: number; uid: number; gid: number }
  | { type: 'symlink'; path: string; uid: number; gid: number; target: string };

const BLOCK = 512;
/** 1970-01-01: no build time leaks into a layer. SOURCE_DATE_EPOCH tools use the same idea. */
const MTIME = 0;

function octal(value: number, width: number): string {
  // Width includes the terminating NUL that ustar readers expect.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, fields: { mode: number; uid: number; gid: number; size: number; type: string; linkname?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(fields.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(fields.uid, 8), 108, 'ascii');
  b.write(octal(fields.gid, 8), 116, 'ascii');
  b.write(octal(fields.size, 12), 124, 'ascii');
  b.write(octal(MTIME, 12), 136, 'ascii');
  b.write(fields.type, 156, 'ascii');
  if (fields.linkname) b.write(fields.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 'ascii');
  // The checksum is computed with its own field read as spaces.
  b.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(octal(sum, 7) + ' ', 148, 'ascii');
  return b;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** A PAX record is `<len> <key>=<value>\n`, where <len> counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (len !== bodyLen + String(len).length) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

function needsPax(text: string): boolean {
  return Buffer.byteLength(text) > 100 || !/^[\x20-\x7e]*$/.test(text);
}

/** The bytes of one entry: a PAX header first when a name does not fit ustar's 100 bytes. */
export function tarEntry(entry: TarEntry): Buffer[] {
  const name = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const linkname = entry.type === 'symlink' ? entry.target : '';
  const parts: Buffer[] = [];
  if (needsPax(name) || needsPax(linkname)) {
    let records = needsPax(name) ? paxRecord('path', name) : '';
    if (needsPax(linkname)) records += paxRecord('linkpath', linkname);
    const data = Buffer.from(records, 'utf8');
    parts.push(header('PaxHeader', { mode: 0o644, uid: 0, gid: 0, size: data.length, type: 'x' }), data, padding(data.length));
  }
  const short = (s: string): string => (needsPax(s) ? '' : s);
  switch (entry.type) {
    case 'file':
      parts.push(header(short(name), { mode: entry.mode, uid: entry.uid, gid: entry.gid, size: entry.data.length, type: '0' }), entry.data, padding(entry.data.length));
      break;
    case 'dir':
      parts.push(header(short(name), { mode: entry.mode, uid: entry.uid, gid: entry.gid, size: 0, type: '5' }));
      break;
    case 'symlink':
      parts.push(header(short(name), { mode: 0o777, uid: entry.uid, gid: entry.gid, size: 0, type: '2', linkname: short(linkname) }));
      break;
  }
  return parts;
}

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

export function tar(entries: readonly TarEntry[]): Buffer {
  return Buffer.concat([...entries.flatMap(tarEntry), TAR_END]);
}

export interface TarFile {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  type: string;
  data: Buffer;
}

/** Reads ustar and PAX `path` names: enough for npm tarballs and for meshid's own archives. */
export function untar(archive: Buffer): TarFile[] {
  const files: TarFile[] = [];
  let offset = 0;
  let paxPath: string | undefined;
  while (offset + BLOCK <= archive.length) {
    const h = archive.subarray(offset, offset + BLOCK);
    if (h.every((byte) => byte === 0)) break;
    const text = (start: number, len: number): string => h.toString('utf8', start, start + len).replace(/\0.*$/s, '');
    const num = (start: number, len: number): number => parseInt(text(start, len).trim() || '0', 8);
    const size = num(124, 12);
    const type = text(156, 1) || '0';
    const data = archive.subarray(offset + BLOCK, offset + BLOCK + size);
    offset += BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (type === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1];
      continue;
    }
    if (type === 'g') continue;
    const prefix = text(345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${text(0, 100)}` : text(0, 100));
    paxPath = undefined;
    files.push({ path: name, mode: num(100, 8), uid: num(108, 8), gid: num(116, 8), type, data });
  }
  return files;
}
