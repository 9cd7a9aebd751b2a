import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TAR_END, tarEntry, type TarEntry } from './tar.ts';

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** A content-addressed piece of an image: a layer, its config or its manifest. */
export interface Blob {
  digest: string;
  data: Buffer;
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function jsonBlob(value: unknown): Blob {
  const data = Buffer.from(JSON.stringify(value));
  return { digest: sha256(data), data };
}

export interface OciArchive {
  /** As a user writes it, e.g. `meshid:0.1.0`; Docker's manifest.json carries it as a tag. */
  name: string;
  /** The tag alone, for OCI tools (`org.opencontainers.image.ref.name`). */
  tag: string;
  config: Blob;
  /** Gzipped layer tarballs, in order. */
  layers: readonly Blob[];
  annotations?: Record<string, string>;
}

/**
 * Writes an OCI image layout as one tar archive, plus Docker's manifest.json so `docker load`
 * takes it too. Written to a temporary file and renamed, so a reader never sees half of one.
 */
export async function writeOciArchive(output: string, image: OciArchive): Promise<{ manifestDigest: string; archiveSize: number }> {
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: image.config.digest, size: image.config.data.length },
    layers: image.layers.map((l) => ({ mediaType: MEDIA_TYPES.layer, digest: l.digest, size: l.data.length })),
    ...(image.annotations ? { annotations: image.annotations } : {}),
  });
  // A name without a registry is Docker Hub's library, as Kubernetes normalises `meshid:<v>`.
  const fullName = image.name.includes('/') ? image.name : `docker.io/library/${image.name}`;
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [
      {
        mediaType: MEDIA_TYPES.manifest,
        digest: manifest.digest,
        size: manifest.data.length,
        // As `docker save` writes them: containerd (ctr import, and so the kubelet) takes the
        // full name; OCI tools the tag.
        annotations: { 'io.containerd.image.name': fullName, 'org.opencontainers.image.ref.name': image.tag },
        platform: { architecture: 'amd64', os: 'linux' },
      },
    ],
  };
  const blobPath = (b: Blob): string => `blobs/sha256/${b.digest.slice('sha256:'.length)}`;
  const dockerManifest = [{ Config: blobPath(image.config), RepoTags: [image.name], Layers: image.layers.map(blobPath) }];
  const blobs = [...image.layers, image.config, manifest].sort((a, b) => (a.digest < b.digest ? -1 : 1));
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
  let archiveSize = 0;
  try {
    const file = await open(tmp, 'w');
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
  } finally {
    await rm(tmp, { force: true });
  }
  return { manifestDigest: manifest.digest, archiveSize };
}
