import { createPrivateKey } from 'node:crypto';
import { lstat, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Any PEM private key: PKCS#8, SEC1 (EC), PKCS#1 (RSA), encrypted or not. */
const PRIVATE_KEY_MARKER = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

export interface KeyHit {
  file: string;
  /** Which form of which key was found, e.g. "key 1: DER, base64". */
  what: string;
}

interface Needle {
  what: string;
  bytes: Buffer;
}

/**
 * Every form a private key could take on disk or in a log line: the PEM body, its DER
 * (PKCS#8, and SEC1 for EC) raw and in base64/base64url/hex, and the private scalar alone.
 */
export function keyNeedles(keyPem: string, label: string): Needle[] {
  const key = createPrivateKey(keyPem);
  const ders = [['PKCS#8', key.export({ format: 'der', type: 'pkcs8' })]] as [string, Buffer][];
  if (key.asymmetricKeyType === 'ec') ders.push(['SEC1', key.export({ format: 'der', type: 'sec1' })]);
  const jwk = key.export({ format: 'jwk' });
  const scalar = Buffer.from(jwk.d ?? '', 'base64url');
  const bodyLines = keyPem.split('\n').filter((line) => line.length > 0 && !line.startsWith('-----'));
  const text = (what: string, value: string): Needle => ({ what: `${label}: ${what}`, bytes: Buffer.from(value, 'latin1') });
  return [
    // Any one line of the PEM body is 48 bytes of the key: finding one is finding the key.
    ...bodyLines.filter((line) => line.length >= 32).map((line, i) => text(`PEM body line ${i + 1}`, line)),
    ...ders.flatMap(([name, der]) => [
      { what: `${label}: ${name} DER, raw`, bytes: der },
      text(`${name} DER, base64`, der.toString('base64')),
      text(`${name} DER, base64url`, der.toString('base64url')),
      text(`${name} DER, hex`, der.toString('hex')),
    ]),
    { what: `${label}: private scalar, raw`, bytes: scalar },
    text('private scalar, base64url', jwk.d ?? ''),
    text('private scalar, hex', scalar.toString('hex')),
  ];
}

/** Regular files under `roots`, recursively; symlinks are not followed, sockets are skipped. */
async function filesUnder(roots: string[]): Promise<string[]> {
  const files: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path).catch(() => undefined);
    if (info?.isDirectory()) {
      for (const entry of await readdir(path)) await walk(join(path, entry));
    } else if (info?.isFile()) {
      files.push(path);
    }
  };
  for (const root of roots) await walk(root);
  return files;
}

/**
 * Looks through every file under `roots` for a PEM private-key marker and for any form of
 * the given keys. Answers what it found and how many files it read, so a test can show it
 * looked at something.
 */
export async function scanForKeyMaterial(roots: string[], keysPem: string[]): Promise<{ hits: KeyHit[]; files: string[] }> {
  const needles = keysPem.flatMap((pem, i) => keyNeedles(pem, `key ${i + 1}`));
  const files = await filesUnder(roots);
  const hits: KeyHit[] = [];
  for (const file of files) {
    const content = await readFile(file);
    if (PRIVATE_KEY_MARKER.test(content.toString('latin1'))) hits.push({ file, what: 'a PEM private-key marker' });
    for (const needle of needles) if (content.includes(needle.bytes)) hits.push({ file, what: needle.what });
  }
  return { hits, files };
}
