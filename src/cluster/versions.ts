/**
 * Pinned peer versions. Kubernetes is the newest minor that builds with this machine's Go
 * (1.37 needs Go 1.26); etcd is the version k8s.io/kubernetes itself requires, so both come
 * from one module graph (peers/kube/go.mod).
 */
export const KUBERNETES_VERSION = 'v1.37.2';
export const ETCD_VERSION = 'v3.7.0';
