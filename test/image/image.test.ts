// Builds meshid's image the way `npm run image` does, then checks it with tools that are not
// meshid's: GNU tar reads the archive and the layers, and the image's own node runs meshid
// from the unpacked root, chrooted, as the image's user.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { EXPOSED_PORTS, IMAGE_UID, MEDIA_TYPES, NODE_PATH, buildImage, type BuiltImage } from '../../src/image/index.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}
interface Manifest {
  schemaVersion: number;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}
interface ImageConfig {
  architecture: string;
  os: string;
  config: { User: string; Entrypoint: string[]; Env: string[]; WorkingDir: string; ExposedPorts: Record<string, object>; Labels: Record<string, string> };
  rootfs: { type: string; diff_ids: string[] };
}

const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('meshid image (npm run image)', () => {
  let dir: string;
  let image: BuiltImage;
  let layout: string;
  let rootfs: string;
  let manifest: Manifest;
  let config: ImageConfig;
  const blob = (digest: string): Promise<Buffer> => readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-image-'));
    image = await buildImage({ output: join(dir, 'first.tar') });
    layout = join(dir, 'layout');
    rootfs = join(dir, 'rootfs');
    await mkdir(layout);
    await mkdir(rootfs);
    await run('tar', ['-xf', image.archive, '-C', layout]);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is an OCI image layout whose every digest and size matches', async () => {
    assert.deepEqual(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, MEDIA_TYPES.index);
    assert.equal(index.manifests.length, 1);
    const [desc] = index.manifests;
    assert.ok(desc);
    assert.equal(desc.mediaType, MEDIA_TYPES.manifest);
    assert.equal(desc.digest, image.manifestDigest);
    // The kubelet asks containerd for `meshid:<version>` under its normalised name.
    assert.equal(desc.annotations?.['io.containerd.image.name'], `docker.io/library/meshid:${pkg.version}`);
    assert.equal(desc.annotations?.['org.opencontainers.image.ref.name'], pkg.version);

    const manifestBytes = await blob(desc.digest);
    assert.equal(sha256(manifestBytes), desc.digest);
    assert.equal(manifestBytes.length, desc.size);
    manifest = JSON.parse(manifestBytes.toString('utf8')) as Manifest;
    assert.equal(manifest.schemaVersion, 2);
    assert.equal(manifest.mediaType, MEDIA_TYPES.manifest);
    assert.equal(manifest.config.mediaType, MEDIA_TYPES.config);
    const configBytes = await blob(manifest.config.digest);
    assert.equal(sha256(configBytes), manifest.config.digest);
    assert.equal(configBytes.length, manifest.config.size);
    config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;

    assert.equal(manifest.layers.length, 3, 'runtime, dependencies, app');
    assert.equal(config.rootfs.type, 'layers');
    for (const [i, layer] of manifest.layers.entries()) {
      assert.equal(layer.mediaType, MEDIA_TYPES.layer);
      const bytes = await blob(layer.digest);
      assert.equal(sha256(bytes), layer.digest);
      assert.equal(bytes.length, layer.size);
      assert.equal(sha256(gunzipSync(bytes)), config.rootfs.diff_ids[i], `diff_id of layer ${i}`);
    }
    // Nothing in the layout that no descriptor names.
    const blobs = (await readdir(join(layout, 'blobs', 'sha256'))).sort();
    assert.deepEqual(blobs, [desc.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)].map((d) => d.slice(7)).sort());

    // Docker's own manifest.json, for `docker load` before Docker 25, names the same blobs.
    const docker = JSON.parse(await readFile(join(layout, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    assert.deepEqual(docker, [{ Config: `blobs/sha256/${manifest.config.digest.slice(7)}`, RepoTags: [`meshid:${pkg.version}`], Layers: manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) }]);
  });

  it('runs meshid as a non-root user, with the ports and labels of the install manifests', async () => {
    const head = (await run('git', ['-C', ROOT, 'rev-parse', 'HEAD'])).stdout.trim();
    assert.equal(config.os, 'linux');
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.config.User, `${IMAGE_UID}:${IMAGE_UID}`);
    assert.deepEqual(config.config.Entrypoint, [NODE_PATH, '/app/bin/meshid']);
    assert.equal(config.config.WorkingDir, '/app');
    assert.ok(config.config.Env.includes('NODE_ENV=production'));
    assert.deepEqual(Object.keys(config.config.ExposedPorts).sort(), EXPOSED_PORTS.map((p) => `${p}/tcp`).sort());
    assert.equal(config.config.Labels['org.opencontainers.image.version'], pkg.version);
    assert.match(config.config.Labels['org.opencontainers.image.revision'] ?? '', new RegExp(`^${head}(-dirty)?$`));
  });

  it('unpacks to a root with nothing of the build machine in it and no dev dependency', async () => {
    // GNU tar as root keeps the owners and modes the layers carry.
    for (const layer of manifest.layers) {
      await run('tar', ['-xzf', join(layout, 'blobs', 'sha256', layer.digest.slice(7)), '-C', rootfs, '--numeric-owner', '--same-owner', '-p']);
    }
    const owners = new Map<string, number>();
    const worldWritable: string[] = [];
    for (const entry of await readdir(rootfs, { recursive: true })) {
      const st = await lstat(join(rootfs, entry));
      if (st.uid !== 0 || st.gid !== 0) owners.set(entry, st.uid);
      if (!st.isSymbolicLink() && (st.mode & 0o002) !== 0) worldWritable.push(entry);
    }
    // Only the user's home is theirs; everything else is root's, whoever ran the build.
    assert.deepEqual([...owners], [[`home/meshid`, IMAGE_UID]]);
    assert.deepEqual(worldWritable, ['tmp']);
    assert.equal((await lstat(join(rootfs, 'tmp'))).mode & 0o7777, 0o1777);
    assert.match(await readFile(join(rootfs, 'etc', 'passwd'), 'utf8'), new RegExp(`^meshid:x:${IMAGE_UID}:${IMAGE_UID}:`, 'm'));

    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => lock.packages[`node_modules/${name}`]?.dev);
    for (const name of ['typescript', 'vite', 'eslint', 'tsx']) assert.ok(devOnly.includes(name), `${name} is a devDependency`);
    for (const name of devOnly) {
      await assert.rejects(lstat(join(rootfs, 'app', 'node_modules', name)), { code: 'ENOENT' }, `${name} must not be in the image`);
    }
    for (const name of Object.keys(pkg.dependencies)) await lstat(join(rootfs, 'app', 'node_modules', name, 'package.json'));
  });

  /** Runs the image's own node in the unpacked root, as uid 65532, with only the image's Env. */
  const inImage = async (args: string[]): Promise<{ stdout: string; stderr: string }> => {
    // Found on the host's PATH: the child gets the image's PATH, which has no unshare or chroot.
    const [unshare, chroot] = await Promise.all(['unshare', 'chroot'].map(async (tool) => (await run('sh', ['-c', `command -v ${tool}`])).stdout.trim()));
    return run(unshare ?? 'unshare', ['--mount', '--pid', '--fork', chroot ?? 'chroot', `--userspec=${IMAGE_UID}:${IMAGE_UID}`, rootfs, ...config.config.Entrypoint.slice(0, 1), ...args], {
      env: Object.fromEntries(config.config.Env.map((kv) => kv.split('=', 2) as [string, string])),
    });
  };

  it("runs the image's node and meshid from its root as uid 65532", async () => {
    assert.equal(process.getuid?.(), 0, 'chroot needs root (npm test runs as root)');
    const entrypoint = config.config.Entrypoint.slice(1);
    const version = await inImage([...entrypoint, '--version']);
    assert.equal(version.stdout.trim(), pkg.version);
    const help = await inImage([...entrypoint, '--help']);
    assert.match(help.stdout, /Usage: meshid/);
    const whoami = await inImage(['-p', '[process.getuid(), process.getgid(), process.version, os.userInfo().username].join(" ")']);
    assert.match(whoami.stdout.trim(), new RegExp(`^${IMAGE_UID} ${IMAGE_UID} v2\\d\\.\\d+\\.\\d+ meshid$`));
    // Every runtime dependency and every compiled module loads, not only what --help touches.
    const check = join(rootfs, 'app', 'image-check.mjs');
    await writeFile(check, [
      "import { readFileSync, readdirSync } from 'node:fs';",
      "const pkg = JSON.parse(readFileSync('/app/package.json', 'utf8'));",
      // @peculiar/x509 wants the Reflect polyfill loaded first, as meshid's own modules do.
      "await import('reflect-metadata');",
      'for (const name of Object.keys(pkg.dependencies)) await import(name);',
      "for (const area of readdirSync('/app/dist', { withFileTypes: true })) {",
      "  if (area.isDirectory() && readdirSync(`/app/dist/${area.name}`).includes('index.js')) await import(`/app/dist/${area.name}/index.js`);",
      '}',
      "console.log('loaded');",
    ].join('\n'));
    const loaded = await inImage(['/app/image-check.mjs']);
    assert.equal(loaded.stdout.trim(), 'loaded');
  });

  it('gives the same digest and bytes when built again from the same tree', async () => {
    const again = await buildImage({ output: join(dir, 'second.tar') });
    assert.equal(again.manifestDigest, image.manifestDigest);
    assert.deepEqual(again.layers, image.layers);
    assert.equal(sha256(await readFile(again.archive)), sha256(await readFile(image.archive)));
  });
});
