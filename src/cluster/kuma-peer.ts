import { fileURLToPath } from 'node:url';
import { buildGoBinaries, type EnsureOptions } from './build.ts';

/**
 * The github.com/kumahq/kuma module version that peers/kuma/go.mod requires. The module proxy
 * serves Kuma only by pseudo-version; this is a master commit of 2024-12-04, between Kuma 2.9
 * and 2.10.
 */
export const KUMA_VERSION = 'v0.0.0-20241204051139-86593067f050';

/** The wrapper module that pins Kuma; shipped with the package (files: peers). */
export const KUMA_PEER_MODULE = fileURLToPath(new URL('../../peers/kuma', import.meta.url));

export interface KumaPeer {
  /** Kuma's real CLI. */
  kumactl: string;
  /**
   * peers/kuma/cmd/kuma-validate-user-token: Kuma's own user-token validator, for checking
   * that a token meshid signs is one a Kuma control plane accepts (kumactl cannot check offline).
   */
  validateUserToken: string;
}

/**
 * Returns the paths to kumactl and Kuma's validator program, building them once from the
 * github.com/kumahq/kuma Go module into the peer cache. Only the tests that use them call
 * this; a cold build takes a long while (about 20 minutes on 2 cores).
 */
export async function ensureKumaPeer(options: EnsureOptions = {}): Promise<KumaPeer> {
  const paths = await buildGoBinaries({
    ...options,
    moduleDir: KUMA_PEER_MODULE,
    name: `kuma-${KUMA_VERSION}`,
    hashFiles: ['go.mod', 'go.sum', 'cmd/kuma-validate-user-token/main.go'],
    targets: {
      kumactl: 'github.com/kumahq/kuma/app/kumactl',
      'kuma-validate-user-token': './cmd/kuma-validate-user-token',
    },
    buildFlags: ['-trimpath', '-ldflags=-s -w'],
    goEnv: { CGO_ENABLED: '0' },
    label: `Building Kuma's kumactl (${KUMA_VERSION}) from its Go module`,
    built: 'kumactl',
    purpose: "to build Kuma's kumactl as a test peer",
  });
  return { kumactl: paths.kumactl, validateUserToken: paths['kuma-validate-user-token'] };
}
