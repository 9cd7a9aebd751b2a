import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { terminalProgress } from '../../src/core/index.ts';
import { readExtension } from '../../src/kube/index.ts';
import { startPlayground, type Playground } from '../../src/playground/index.ts';

let shared: Promise<Playground> | undefined;
let dir: string | undefined;

/** One playground for every benchmark in a run; `stopSharedPlayground` ends it. */
export function sharedPlayground(): Promise<Playground> {
  shared ??= (async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-bench-'));
    // Host processes, not the playground's node: benchmarks read meshid's own pids (CPU, RSS)
    // and a kubelet, containerd and pods would share the two cores with what is measured.
    return startPlayground({ dir, progress: terminalProgress(), node: false });
  })();
  return shared;
}

export async function stopSharedPlayground(): Promise<void> {
  if (!shared) return;
  try {
    await (await shared).stop();
  } finally {
    // Also when the playground failed to start: its directory holds only what that left.
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

export interface UserTls {
  server: URL;
  ca: string;
  cert?: string;
  key?: string;
  token?: string;
  meshidCa: string;
}

/** A sample user's credentials, as the kubeconfig holds them, plus the CA of meshid's HTTPS port. */
export async function userTls(kubeconfig: string): Promise<UserTls> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster) throw new Error('no cluster');
  const b64 = (s: string | undefined): string | undefined => (s ? Buffer.from(s, 'base64').toString('utf8') : undefined);
  const ext = await readExtension(kubeconfig, kc.getCurrentContext());
  return {
    server: new URL(cluster.server),
    ca: b64(cluster.caData) ?? (cluster.caFile ? await readFile(cluster.caFile, 'utf8') : ''),
    ...(user?.certData ? { cert: b64(user.certData) ?? '' } : {}),
    ...(user?.keyData ? { key: b64(user.keyData) ?? '' } : {}),
    ...(user?.token ? { token: user.token } : {}),
    meshidCa: b64(ext['certificate-authority-data']) ?? '',
  };
}
