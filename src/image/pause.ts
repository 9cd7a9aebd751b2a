import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { jsonBlob, sha256, writeOciArchive } from './oci.ts';
import { tar } from './tar.ts';

const gzipAsync = promisify(gzip);

/**
 * The sandbox image the playground node's containerd pins. No registry is reachable, so
 * the node cannot pull registry.k8s.io/pause: it gets one static program of ours, run as
 * nobody, which is all a sandbox needs.
 */
export const PAUSE_IMAGE = 'meshid.local/pause:1';

export async function buildPauseImage(pauseBinary: string, output: string): Promise<string> {
  const layerTar = tar([{ type: 'file', path: 'pause', data: await readFile(pauseBinary), mode: 0o755, uid: 0, gid: 0 }]);
  const layer = await gzipAsync(layerTar);
  const config = jsonBlob({
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { User: '65535:65535', Entrypoint: ['/pause'] },
    rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
  });
  await writeOciArchive(output, { name: PAUSE_IMAGE, tag: '1', config, layers: [{ digest: sha256(layer), data: layer }] });
  return PAUSE_IMAGE;
}
