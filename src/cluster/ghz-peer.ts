import { fileURLToPath } from 'node:url';
import { buildGoBinaries, type EnsureOptions } from './build.ts';

/** The wrapper module that pins ghz (peers/ghz/go.mod). */
export const GHZ_PEER_MODULE = fileURLToPath(new URL('../../peers/ghz', import.meta.url));

/** Returns the path to ghz, a gRPC load generator for benchmarks, built once from its Go module. */
export async function ensureGhz(options: EnsureOptions = {}): Promise<string> {
  const paths = await buildGoBinaries({
    ...options,
    moduleDir: GHZ_PEER_MODULE,
    name: 'ghz',
    hashFiles: ['go.mod', 'go.sum'],
    targets: { ghz: 'github.com/bojand/ghz/cmd/ghz' },
    buildFlags: ['-trimpath'],
    goEnv: { CGO_ENABLED: '0' },
    label: 'Building ghz (gRPC load generator) from its Go module',
    built: 'ghz',
    purpose: 'to build ghz for the CA benchmark',
  });
  return paths.ghz;
}
