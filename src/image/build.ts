import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { MeshidError, silentProgress, type Progress } from '../core/index.ts';
import { cacheRoot } from '../cluster/index.ts';
import { DEFAULT_CA_PORT } from '../contract/index.ts';
import { NODE_RUNTIME, nodeRuntime, sharedLibraries } from './node-runtime.ts';
import { APP_DIR, IMAGE_UID, NODE_PATH, appLayer, dependencyLayer, runtimeLayer } from './rootfs.ts';
import { jsonBlob, sha256, writeOciArchive, type Blob } from './oci.ts';
import { tar, type TarEntry } from './tar.ts';

const run = promisify(execFile);
const gzipAsync = promisify(gzip);

/** The checkout this module was loaded from (src/image or dist/image, two levels down). */
const CHECKOUT = fileURLToPath(new URL('../..', import.meta.url));

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

/** Bump when what the layer functions write changes, so remembered layers are not reused. */
const LAYOUT_VERSION = 'layout-1';

type LayerFacts = Omit<LayerInfo, 'name'>;

function inputsFile(blobCache: string, layer: string, inputs: string): string {
  return join(blobCache, `inputs-${layer}-${sha256(Buffer.from(inputs)).slice('sha256:'.length, 'sha256:'.length + 32)}.json`);
}

/** A layer built before from the same inputs, if its compressed blob is still whole. */
async function rememberedLayer(blobCache: string, layer: string, inputs: string): Promise<{ info: LayerFacts; blob: Blob } | undefined> {
  const info = await readFile(inputsFile(blobCache, layer, inputs), 'utf8').then((t) => JSON.parse(t) as LayerFacts, () => undefined);
  if (!info) return undefined;
  const data = await readFile(join(blobCache, `${info.diffId.slice('sha256:'.length)}.gz`)).catch(() => undefined);
  // The blob's digest is checked, so a damaged cache builds afresh rather than ship it.
  if (!data || sha256(data) !== info.digest) return undefined;
  return { info, blob: { digest: info.digest, data } };
}

async function rememberLayer(blobCache: string, layer: string, inputs: string, info: LayerFacts): Promise<void> {
  const file = inputsFile(blobCache, layer, inputs);
  await writeFile(`${file}.tmp`, JSON.stringify(info));
  await rename(`${file}.tmp`, file);
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
    // What each layer is made from, hashed cheaply: when it matches a build before, the
    // layer is taken from the cache without writing and hashing its tar again (the runtime
    // and the dependencies are 256 MiB of tar). The app layer is small and always rebuilt.
    const installed = await readFile(join(root, 'node_modules', '.package-lock.json')).catch(() => Buffer.alloc(0));
    const sources: Array<[LayerInfo['name'], () => Promise<TarEntry[]>, string, string | undefined]> = [
      ['runtime', async () => runtimeLayer(runtime, libraries), `node ${NODE_RUNTIME.version} (npm ${NODE_RUNTIME.package}), ${libraries.map((l) => l.path.split('/').pop()).join(' ')}, /etc/passwd, /tmp`, [LAYOUT_VERSION, NODE_RUNTIME.integrity, ...libraries.map((l) => `${l.path}=${sha256(l.data)}`)].join('\n')],
      ['dependencies', () => dependencyLayer(root), 'production dependencies (package-lock.json without dev)', [LAYOUT_VERSION, sha256(await readFile(join(root, 'package-lock.json'))), sha256(installed)].join('\n')],
      ['app', () => appLayer(root), 'meshid: dist/, bin/meshid, proto/, package.json', undefined],
    ];
    const layers: Array<{ info: LayerInfo; blob: Blob; createdBy: string }> = [];
    for (const [layerName, entries, createdBy, inputs] of sources) {
      progress.update(`Building ${name}: ${layerName} layer`);
      const remembered = inputs === undefined ? undefined : await rememberedLayer(blobCache, layerName, inputs);
      if (remembered) {
        layers.push({ info: { name: layerName, ...remembered.info }, blob: remembered.blob, createdBy });
        continue;
      }
      const tarball = tar(await entries());
      const { blob, diffId } = await compressed(tarball, blobCache);
      const info = { digest: blob.digest, diffId, size: blob.data.length, uncompressedSize: tarball.length };
      if (inputs !== undefined) await rememberLayer(blobCache, layerName, inputs, info);
      layers.push({ info: { name: layerName, ...info }, blob, createdBy });
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
    progress.update(`Building ${name}: writing ${output}`);
    const { manifestDigest, archiveSize } = await writeOciArchive(output, { name, tag: pkg.version, config, layers: layers.map((l) => l.blob), annotations: labels });
    progress.succeed(`Built ${name} (${layers.map((l) => `${l.info.name} ${mib(l.info.size)}`).join(', ')})`);
    return { name, archive: output, manifestDigest, archiveSize, layers: layers.map((l) => l.info) };
  } catch (error) {
    progress.fail(`Building ${name} failed`);
    if (error instanceof MeshidError) throw error;
    throw new MeshidError('ERR_IMAGE_BUILD_FAILED', `building ${name} failed: ${(error as Error).message}`, { cause: error });
  }
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
