import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MeshidError } from '../core/index.ts';
import type { NodeRuntime, SharedLibrary } from './node-runtime.ts';
import type { TarEntry } from './tar.ts';

/** The image's one user: the uid distroless calls `nonroot`, and the install manifests' runAsUser. */
export const IMAGE_UID = 65532;
export const IMAGE_USER = 'meshid';
export const APP_DIR = 'app';
export const NODE_PATH = '/usr/local/bin/node';

/**
 * What a layer holds, before ownership and order are made uniform: paths without a leading
 * slash, and only the entries that differ from a root-owned, 0755 directory.
 */
type Item =
  | { type: 'file'; path: string; data: Buffer; executable?: boolean; mode?: number; owner?: number }
  | { type: 'dir'; path: string; mode: number; owner?: number }
  | { type: 'symlink'; path: string; target: string };

/**
 * Turns items into tar entries: every parent directory present, everything owned by root
 * unless it says otherwise, files 0644 or 0755, and sorted by path so the bytes depend on
 * nothing but the contents.
 */
function layer(items: readonly Item[]): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const item of items) {
    for (let dir = dirname(item.path); dir !== '.'; dir = dirname(dir)) {
      if (!byPath.has(dir)) byPath.set(dir, { type: 'dir', path: dir, mode: 0o755, uid: 0, gid: 0 });
    }
    const owner = item.type === 'symlink' ? 0 : (item.owner ?? 0);
    switch (item.type) {
      case 'file':
        byPath.set(item.path, { type: 'file', path: item.path, data: item.data, mode: item.mode ?? (item.executable ? 0o755 : 0o644), uid: owner, gid: owner });
        break;
      case 'dir':
        byPath.set(item.path, { type: 'dir', path: item.path, mode: item.mode, uid: owner, gid: owner });
        break;
      case 'symlink':
        byPath.set(item.path, { type: 'symlink', path: item.path, target: item.target, uid: 0, gid: 0 });
        break;
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The runtime layer: node, the glibc libraries it links against, a user, and /tmp. No shell,
 * no package manager, no CA bundle: meshid reaches the apiserver with the service account's
 * CA file, and node carries Mozilla's roots for anything else.
 */
export function runtimeLayer(runtime: NodeRuntime, libraries: readonly SharedLibrary[]): TarEntry[] {
  return layer([
    { type: 'file', path: NODE_PATH.slice(1), data: runtime.node, executable: true },
    { type: 'file', path: 'usr/local/share/doc/node/LICENSE', data: runtime.license },
    ...libraries.map((lib): Item => ({ type: 'file', path: lib.path.slice(1), data: lib.data, executable: true })),
    { type: 'file', path: 'etc/passwd', data: Buffer.from(`root:x:0:0:root:/root:/sbin/nologin\n${IMAGE_USER}:x:${IMAGE_UID}:${IMAGE_UID}:${IMAGE_USER}:/home/${IMAGE_USER}:/sbin/nologin\n`) },
    { type: 'file', path: 'etc/group', data: Buffer.from(`root:x:0:\n${IMAGE_USER}:x:${IMAGE_UID}:\n`) },
    // Without this file glibc asks DNS before /etc/hosts, so even `localhost` would be a query.
    { type: 'file', path: 'etc/nsswitch.conf', data: Buffer.from('passwd: files\ngroup: files\nhosts: files dns\n') },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: `home/${IMAGE_USER}`, mode: 0o755, owner: IMAGE_UID },
  ]);
}

/** Reads a tree from disk into items under `to`, keeping symlinks and executable bits. */
async function tree(from: string, to: string, skip: (relative: string) => boolean): Promise<Item[]> {
  const entries = (await readdir(from, { recursive: true, withFileTypes: true })).filter((e) => !skip(join(e.parentPath, e.name).slice(from.length + 1)));
  const read = async (entry: (typeof entries)[number]): Promise<Item[]> => {
    const abs = join(entry.parentPath, entry.name);
    const path = join(to, abs.slice(from.length + 1));
    if (entry.isSymbolicLink()) return [{ type: 'symlink', path, target: await readlink(abs) }];
    if (!entry.isFile()) return [];
    const [data, st] = await Promise.all([readFile(abs), lstat(abs)]);
    return [{ type: 'file', path, data, executable: (st.mode & 0o111) !== 0 }];
  };
  // node_modules is thousands of small files: read them a batch at a time, not one by one.
  const items: Item[] = [];
  for (let i = 0; i < entries.length; i += 64) items.push(...(await Promise.all(entries.slice(i, i + 64).map(read))).flat());
  return items;
}

interface Lockfile {
  packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean; link?: boolean }>;
}

/**
 * The dependency layer: exactly the packages `npm ci --omit=dev` would install, taken from
 * the checkout's node_modules by the lockfile's own `dev` flags. It needs no network and no
 * copy of node_modules, and it changes only when the lockfile does.
 */
export async function dependencyLayer(root: string): Promise<TarEntry[]> {
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as Lockfile;
  const items: Item[] = [];
  for (const [path, meta] of Object.entries(lock.packages).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (path === '' || meta.dev || meta.link) continue;
    const dir = join(root, path);
    const present = await lstat(dir).then(() => true, () => false);
    if (!present) {
      // An optional package for another platform is legitimately absent; anything else is a broken install.
      if (meta.optional) continue;
      throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `${path} is in package-lock.json but not installed`, { hint: 'run npm ci' });
    }
    // A nested node_modules holds packages of its own, each listed (or not) in the lockfile.
    items.push(...(await tree(dir, join(APP_DIR, path), (rel) => rel === 'node_modules' || rel.startsWith('node_modules/'))));
  }
  return layer(items);
}

/**
 * meshid's own code: what `npm run build` wrote to dist/ (the dashboard in dist/web too),
 * bin/meshid, proto/, and package.json (its `"type": "module"` makes dist/*.js ES modules).
 * Source maps stay out: they point at src/, which the image does not hold.
 */
export async function appLayer(root: string): Promise<TarEntry[]> {
  const dist = join(root, 'dist');
  const launcher = await readFile(join(root, 'bin', 'meshid'), 'utf8');
  // Whatever layout the build has (tsc output, a bundle), the launcher names what it loads.
  for (const [, needed] of launcher.matchAll(/['"]\.\.\/(dist\/[^'"]+)['"]/g)) {
    const built = await lstat(join(root, needed ?? '')).then(() => true, () => false);
    if (!built) throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `bin/meshid loads ${needed}, which is not built`, { hint: 'run npm run build first (npm run image does)' });
  }
  return layer([
    { type: 'file', path: join(APP_DIR, 'package.json'), data: await readFile(join(root, 'package.json')) },
    { type: 'file', path: join(APP_DIR, 'bin', 'meshid'), data: Buffer.from(launcher), executable: true },
    ...(await tree(dist, join(APP_DIR, 'dist'), (rel) => rel.endsWith('.map') || rel.endsWith('.tsbuildinfo'))),
    ...(await tree(join(root, 'proto'), join(APP_DIR, 'proto'), () => false)),
  ]);
}
