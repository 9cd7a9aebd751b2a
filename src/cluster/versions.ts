/**
 * Pinned peer versions. Kubernetes is the newest minor that builds with this machine's Go
 * (1.37 needs Go 1.26); etcd is the version k8s.io/kubernetes itself requires, so both come
 * from one module graph (peers/kube/go.mod).
 */
export const KUBERNETES_VERSION = 'v1.37.2';
export const ETCD_VERSION = 'v3.7.0';
/** containerd 2.x: Kubernetes 1.36+ refuses the 1.x that Debian ships (peers/containerd/go.mod). */
export const CONTAINERD_VERSION = 'v2.4.2';

/**
 * Built from the module, Kubernetes binaries say `v0.0.0-master+$Format:%H$`, which kubectl
 * cannot parse and a node would report as its kubelet version: stamp the real one, in both
 * packages Kubernetes' own release build stamps.
 */
export function kubeVersionLdflags(): string {
  const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
  const fields = { gitVersion: KUBERNETES_VERSION, gitMajor: major ?? '', gitMinor: minor ?? '', gitTreeState: 'clean' };
  return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']
    .flatMap((pkg) => Object.entries(fields).map(([name, value]) => `-X ${pkg}.${name}=${value}`))
    .join(' ');
}
