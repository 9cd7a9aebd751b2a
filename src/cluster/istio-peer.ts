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
  const paths = await buildIstio(options, `istio-${ISTIO_VERSION}`, 'pilot-agent', 'istio.io/istio/pilot/cmd/pilot-agent', 'as a test peer');
  return paths['pilot-agent'];
}

/**
 * Returns the path to Istio's pilot-discovery (istiod), built from the same module into a cache
 * folder of its own, so that the tests, which need only pilot-agent, never build it. Only
 * `npm run bench` asks for it: the CA benchmark runs it as a CA beside meshid's
 * (bench/lib/istiod.ts).
 */
export async function ensurePilotDiscovery(options: EnsureOptions = {}): Promise<string> {
  const paths = await buildIstio(options, `istiod-${ISTIO_VERSION}`, 'pilot-discovery', 'istio.io/istio/pilot/cmd/pilot-discovery', 'for the CA benchmark');
  return paths['pilot-discovery'];
}

/**
 * Returns the path to peers/istio's ambient-ca-client: istio.io/api's generated CA client
 * asking for a certificate as Istio's ambient node proxy (ztunnel) does, with
 * ImpersonatedIdentity. ztunnel itself is Rust; this speaks its request from Go, on the same
 * API module. Small and quick to build, into its own cache folder.
 */
export async function ensureAmbientCaClient(options: EnsureOptions = {}): Promise<string> {
  const paths = await buildGoBinaries({
    ...options,
    moduleDir: ISTIO_PEER_MODULE,
    name: `istio-ambient-ca-client-${ISTIO_VERSION}`,
    hashFiles: ['go.mod', 'go.sum', 'cmd/ambient-ca-client/main.go'],
    targets: { 'ambient-ca-client': './cmd/ambient-ca-client' },
    buildFlags: ['-trimpath'],
    goEnv: { CGO_ENABLED: '0' },
    label: 'Building the ambient CA client (istio.io/api) from peers/istio',
    built: 'ambient-ca-client',
    purpose: 'to build an Istio ambient CA client as a test peer',
  });
  return paths['ambient-ca-client'];
}

function buildIstio<Name extends string>(options: EnsureOptions, folder: string, name: Name, pkg: string, why: string): Promise<Record<Name, string>> {
  return buildGoBinaries({
    ...options,
    moduleDir: ISTIO_PEER_MODULE,
    name: folder,
    hashFiles: ['go.mod', 'go.sum'],
    targets: { [name]: pkg } as Record<Name, string>,
    buildFlags: ['-trimpath'],
    goEnv: { CGO_ENABLED: '0' },
    label: `Building Istio's ${name} (${ISTIO_VERSION}) from its Go module`,
    built: name,
    purpose: `to build Istio's ${name} ${why}`,
  });
}
