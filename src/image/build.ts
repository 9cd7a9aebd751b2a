import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { MeshidError, silentProgress, type Progress } from '../core/index.ts';
import { cacheRoot } from '../cluster/index.ts';
import { DEFAULT_CA_PORT } from '../contract/index.ts';
import { NODE_RUNTIME, nodeRuntime, sharedLibraries } from './node-runtime.ts';
import { APP_DIR, IMAGE_UID, NODE_PATH, appLayer, dependencyLayer, runtimeLayer } from './rootfs.ts';
import { TAR_END, tar, tarEntry, type TarEntry } from './tar.ts';

const run = promisify(execFile);
const gzipAsync = promisify(gzip);

/** The checkout this module was loaded from (src/image or dist/image, two levels down). */
const CHECKOUT = fileURLToPath(new URL('../..', import.meta.url));

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** The ports the server (HTTP, HTTPS) and the CA listen on; the install manifests use the same. */
export const EXPOSED_PORTS = [5681, 5682, DEFAULT_CA_PORT] as const;

export interface BuildImageOptions {
  /** The checkout to build from; default: the one this code is in. */
  root?: string;
  /** Where the archive goes; default `<cache>/images/meshid-<version>.tar`. */
  output?: string;
  cacheDir?: string;
  progress?: Progress;
}

export interface LayerInfo {
  name: 'runtime' | 'dependencies' | 'app';
  digest: string;
  diffId: string;
  size: number;
  uncompressedSize: number;
}

export interface BuiltImage {
  /** The name importers give it, e.g. `meshid:0.1.0` (docker.io/library/meshid:0.1.0 in containerd). */
  name: string;
  archive: string;
  manifestDigest: string;
  archiveSize: number;
  layers: LayerInfo[];
}

interface Blob {
  digest: string;
  data: Buffer;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function jsonBlob(value: unknown): Blob {
  const data = Buffer.from(JSON.stringify(value));
  return { digest: sha256(data), data };
}

async function git(root: string, args: string[]): Promise<string | undefined> {
  return run('git', ['-C', root, ...args]).then(
    ({ stdout }) => stdout.trim() || undefined,
    () => undefined,
  );
}

/**
 * Gzip is the slow part (the node binary is 120 MB), so compressed layers are cached by the
 * digest of their uncompressed tar: an unchanged runtime or dependency layer costs a hash.
 */
async function compressed(tarball: Buffer, blobCache: string): Promise<{ blob: Blob; diffId: string }> {
  const diffId = sha256(tarball);
  const cached = join(blobCache, `${diffId.slice('sha256:'.length)}.gz`);
  let data = await readFile(cached).catch(() => undefined);
  if (!data) {
    // Level 9 buys under 1 % over the default on node; the default keeps a cold build fast.
    data = await gzipAsync(tarball);
    await mkdir(blobCache, { recursive: true });
    await writeFile(`${cached}.tmp`, data);
    await rename(`${cached}.tmp`, cached);
  }
  return { blob: { digest: sha256(data), data }, diffId };
}

/**
 * Builds meshid's OCI image archive from a built checkout without a container engine: three
 * gzip layers (runtime, production dependencies, meshid's code) in an OCI image layout, plus
 * Docker's manifest.json so older `docker load` takes it too. Same checkout, same digest.
 */
export async function buildImage(options: BuildImageOptions = {}): Promise<BuiltImage> {
  const root = options.root ?? CHECKOUT;
  const progress = options.progress ?? silentProgress;
  const cacheDir = options.cacheDir ?? cacheRoot();
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  const name = `meshid:${pkg.version}`;
  const output = options.output ?? join(cacheDir, 'images', `meshid-${pkg.version}.tar`);
  const blobCache = join(cacheDir, 'images', 'layers');

  progress.start(`Building ${name}: node ${NODE_RUNTIME.version} runtime`);
  try {
    const runtime = await nodeRuntime(join(cacheDir, 'node'), progress);
    const libraries = await sharedLibraries(runtime.path);
    const sources: Array<[LayerInfo['name'], () => Promise<TarEntry[]>, string]> = [
      ['runtime', async () => runtimeLayer(runtime, libraries), `node ${NODE_RUNTIME.version} (npm ${NODE_RUNTIME.package}), ${libraries.map((l) => l.path.split('/').pop()).join(' ')}, /etc/passwd, /tmp`],
      ['dependencies', () => dependencyLayer(root), 'production dependencies (package-lock.json without dev)'],
      ['app', () => appLayer(root), 'meshid: dist/, bin/meshid, proto/, package.json'],
    ];
    const layers: Array<{ info: LayerInfo; blob: Blob; createdBy: string }> = [];
    for (const [layerName, entries, createdBy] of sources) {
      progress.update(`Building ${name}: ${layerName} layer`);
      const tarball = tar(await entries());
      const { blob, diffId } = await compressed(tarball, blobCache);
      layers.push({ info: { name: layerName, digest: blob.digest, diffId, size: blob.data.length, uncompressedSize: tarball.length }, blob, createdBy });
    }

    progress.update(`Building ${name}: config and manifest`);
    const revision = await git(root, ['rev-parse', 'HEAD']);
    // Uncommitted changes to what goes into the image are not the commit: say so.
    const dirty = await git(root, ['status', '--porcelain', '--', 'src', 'web', 'bin', 'proto', 'package.json', 'package-lock.json']);
    const source = await git(root, ['remote', 'get-url', 'origin']);
    const created = (await git(root, ['log', '-1', '--format=%cI'])) ?? '1970-01-01T00:00:00Z';
    const labels: Record<string, string> = { 'org.opencontainers.image.title': 'meshid', 'org.opencontainers.image.version': pkg.version };
    if (revision) labels['org.opencontainers.image.revision'] = dirty ? `${revision}-dirty` : revision;
    if (source) labels['org.opencontainers.image.source'] = source;
    const config = jsonBlob({
      created: new Date(created).toISOString(),
      architecture: 'amd64',
      os: 'linux',
      config: {
        User: `${IMAGE_UID}:${IMAGE_UID}`,
        Entrypoint: [NODE_PATH, `/${APP_DIR}/bin/meshid`],
        Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'],
        WorkingDir: `/${APP_DIR}`,
        ExposedPorts: Object.fromEntries(EXPOSED_PORTS.map((p) => [`${p}/tcp`, {}])),
        Labels: labels,
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.info.diffId) },
      history: layers.map((l) => ({ created: new Date(created).toISOString(), created_by: `meshid image: ${l.createdBy}` })),
    });
    const manifest = jsonBlob({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: { mediaType: MEDIA_TYPES.config, digest: config.digest, size: config.data.length },
      layers: layers.map((l) => ({ mediaType: MEDIA_TYPES.layer, digest: l.blob.digest, size: l.blob.data.length })),
      annotations: labels,
    });
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [
        {
          mediaType: MEDIA_TYPES.manifest,
          digest: manifest.digest,
          size: manifest.data.length,
          // As `docker save` writes them: containerd (ctr import, and so the kubelet) takes the
          // full name, Kubernetes' normalised form of `meshid:<version>`; OCI tools the tag.
          annotations: { 'io.containerd.image.name': `docker.io/library/${name}`, 'org.opencontainers.image.ref.name': pkg.version },
          platform: { architecture: 'amd64', os: 'linux' },
        },
      ],
    };
    const blobPath = (b: Blob): string => `blobs/sha256/${b.digest.slice('sha256:'.length)}`;
    const dockerManifest = [{ Config: blobPath(config), RepoTags: [name], Layers: layers.map((l) => blobPath(l.blob)) }];

    progress.update(`Building ${name}: writing ${output}`);
    const blobs = [...layers.map((l) => l.blob), config, manifest].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    const entries: TarEntry[] = [
      { type: 'dir', path: 'blobs', mode: 0o755, uid: 0, gid: 0 },
      { type: 'dir', path: 'blobs/sha256', mode: 0o755, uid: 0, gid: 0 },
      ...blobs.map((b): TarEntry => ({ type: 'file', path: blobPath(b), data: b.data, mode: 0o644, uid: 0, gid: 0 })),
      { type: 'file', path: 'index.json', data: Buffer.from(JSON.stringify(index)), mode: 0o644, uid: 0, gid: 0 },
      { type: 'file', path: 'manifest.json', data: Buffer.from(JSON.stringify(dockerManifest)), mode: 0o644, uid: 0, gid: 0 },
      { type: 'file', path: 'oci-layout', data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })), mode: 0o644, uid: 0, gid: 0 },
    ];
    await mkdir(dirname(output), { recursive: true });
    const tmp = `${output}.${process.pid}.tmp`;
    const file = await open(tmp, 'w');
    let archiveSize = 0;
    try {
      // Written entry by entry: the archive is as big as the image, no need to hold it twice.
      for (const part of [...entries.flatMap(tarEntry), TAR_END]) {
        await file.write(part);
        archiveSize += part.length;
      }
    } finally {
      await file.close();
    }
    await rename(tmp, output);
    progress.succeed(`Built ${name} (${layers.map((l) => `${l.info.name} ${mib(l.info.size)}`).join(', ')})`);
    return { name, archive: output, manifestDigest: manifest.digest, archiveSize, layers: layers.map((l) => l.info) };
  } catch (error) {
    progress.fail(`Building ${name} failed`);
    if (error instanceof MeshidError) throw error;
    throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `building ${name} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await rm(`${output}.${process.pid}.tmp`, { force: true });
  }
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
