import { fileURLToPath } from 'node:url';
import { buildGoBinaries, KUBE_PEER_MODULE, type EnsureOptions } from './build.ts';
import { CONTAINERD_VERSION, KUBERNETES_VERSION, kubeVersionLdflags } from './versions.ts';

/** What a playground node runs, besides runc and the CNI plugins that come from Debian. */
export interface NodeBinaries {
  kubelet: string;
  kubeScheduler: string;
  kubeProxy: string;
  containerd: string;
  containerdShim: string;
  ctr: string;
  /** The sandbox ("pause") program, packed into a local image at boot. */
  pause: string;
}

/** containerd's wrapper module, kept apart from peers/kube so neither moves the other's pins. */
export const CONTAINERD_PEER_MODULE = fileURLToPath(new URL('../../peers/containerd', import.meta.url));

/**
 * Builds the node's Kubernetes parts from the same module as the apiserver, and containerd
 * (static, CGO off) with the pause program from its own module; each once, into the cache.
 */
export async function ensureNodeBinaries(options: EnsureOptions = {}): Promise<NodeBinaries> {
  const kube = await buildGoBinaries({
    ...options,
    moduleDir: KUBE_PEER_MODULE,
    name: `k8s-node-${KUBERNETES_VERSION}`,
    hashFiles: ['go.mod', 'go.sum'],
    targets: { kubelet: 'k8s.io/kubernetes/cmd/kubelet', 'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler', 'kube-proxy': 'k8s.io/kubernetes/cmd/kube-proxy' },
    buildFlags: [`-ldflags=-s -w ${kubeVersionLdflags()}`],
    label: `Building kubelet, kube-scheduler and kube-proxy ${KUBERNETES_VERSION} for the playground node`,
    built: 'the node',
    purpose: "to build the playground node's kubelet",
  });
  const containerd = await buildGoBinaries({
    ...options,
    moduleDir: CONTAINERD_PEER_MODULE,
    name: `containerd-${CONTAINERD_VERSION}`,
    hashFiles: ['go.mod', 'go.sum', 'cmd/pause/main.go'],
    targets: {
      containerd: 'github.com/containerd/containerd/v2/cmd/containerd',
      'containerd-shim-runc-v2': 'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2',
      ctr: 'github.com/containerd/containerd/v2/cmd/ctr',
      pause: './cmd/pause',
    },
    buildFlags: ['-trimpath', '-ldflags=-s -w'],
    goEnv: { CGO_ENABLED: '0' },
    label: `Building containerd ${CONTAINERD_VERSION} for the playground node`,
    built: 'containerd',
    purpose: "to build the playground node's container runtime",
  });
  return {
    kubelet: kube.kubelet,
    kubeScheduler: kube['kube-scheduler'],
    kubeProxy: kube['kube-proxy'],
    containerd: containerd.containerd,
    containerdShim: containerd['containerd-shim-runc-v2'],
    ctr: containerd.ctr,
    pause: containerd.pause,
  };
}
