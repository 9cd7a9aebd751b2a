import { fileURLToPath } from 'node:url';
import { buildGoBinaries, type EnsureOptions } from './build.ts';

/**
 * The istio.io/istio module version that peers/istio/go.mod requires. Istio's "1.x.y" tags are
 * not Go module versions, so this is a pseudo-version: a master commit of 2026-08-27 (1.31-dev),
 * the newest whose dependencies the module proxy serves. See peers/istio/README.md.
 */
export const ISTIO_VERSION = 'v0.0.0-20260827124520-eed52ebb66ad';

/** The wrapper module that pins istio.io/istio; shipped with the package (files: peers). */
export const ISTIO_PEER_MODULE = fileURLToPath(new URL('../../peers/istio', import.meta.url));

/**
 * Returns the path to Istio's real pilot-agent, building it once from the istio.io/istio Go
 * module into the peer cache. Integration tests run it against meshid's CA with CA_ADDR; how
 * is written down in peers/istio/README.md.
 */
export async function ensurePilotAgent(options: EnsureOptions = {}): Promise<string> {
  return (await buildIstio(options))['pilot-agent'];
}

/**
 * Returns the path to Istio's pilot-discovery (istiod), built from the same module and cache
 * folder as pilot-agent. Only `npm run bench` asks for it: the CA benchmark runs it as a CA
 * next to meshid's (bench/ca-istiod.ts).
 */
export async function ensurePilotDiscovery(options: EnsureOptions = {}): Promise<string> {
  return (await buildIstio(options))['pilot-discovery'];
}

// Both binaries come from one `go build`, so they share one cache folder and one progress line;
// asking for either builds both the first time (the second costs little once the first compiles).
function buildIstio(options: EnsureOptions) {
  return buildGoBinaries({
    ...options,
    moduleDir: ISTIO_PEER_MODULE,
    name: `istio-${ISTIO_VERSION}`,
    hashFiles: ['go.mod', 'go.sum'],
    targets: {
      'pilot-agent': 'istio.io/istio/pilot/cmd/pilot-agent',
      'pilot-discovery': 'istio.io/istio/pilot/cmd/pilot-discovery',
    },
    buildFlags: ['-trimpath'],
    goEnv: { CGO_ENABLED: '0' },
    label: `Building Istio's pilot-agent and pilot-discovery (${ISTIO_VERSION}) from its Go module`,
    built: 'pilot-agent and pilot-discovery',
    purpose: "to build Istio's pilot-agent and istiod as peers",
  });
}
