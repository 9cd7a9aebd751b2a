export { ensurePeerBinaries, KUBE_PEER_MODULE, type PeerBinaries, type EnsureOptions } from './build.ts';
export { ensurePilotAgent, ISTIO_VERSION, ISTIO_PEER_MODULE } from './istio-peer.ts';
export { startCluster, MESHID_BIN, SERVICE_ACCOUNT_ISSUER, type LocalCluster, type ClusterOptions, type ClusterPeer } from './cluster.ts';
export { isAlive, stopPid, freePort, spawnPeer, type PeerProcess } from './processes.ts';
export { cacheRoot } from './cache.ts';
export { SAMPLE_USERS, DEV_NAMESPACE, type SampleUser } from './users.ts';
export { KUBERNETES_VERSION, ETCD_VERSION } from './versions.ts';
export { PLAYGROUND_CLUSTER } from './kubeconfig.ts';
export { ensureGhz, GHZ_PEER_MODULE } from './ghz-peer.ts';
