import { execFile } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Progress } from '../core/index.ts';
import { KUBELET_CLIENT_USER, spawnPeer, pidRecord, waitForPeer, type LocalCluster, type NodeBinaries, type PeerProcess } from '../cluster/index.ts';
import { PAUSE_IMAGE, buildPauseImage } from '../image/index.ts';
import { CLUSTER_DOMAIN } from '../contract/index.ts';
import { applyObjects, loadKubeConfig } from '../kube/index.ts';
import type { NodeNamespace, NodeNetwork } from './node-namespace.ts';

const run = promisify(execFile);
const READY_TIMEOUT_MS = 60_000;
/** Where the node's peers' logs are, for the hint of a failed start. */
const NODE_LOGS = { logDir: 'node/logs' };

export interface PlaygroundNode {
  name: string;
  ip: string;
  /** The kubelet, kube-proxy and kube-scheduler (containerd is the runtime's). */
  processes: PeerProcess[];
  /** Milliseconds from the first node process to the node's Ready condition. */
  readyAfterMs: number;
}

/** containerd in the node's namespaces, with the sandbox image in its store. */
export interface ContainerRuntime {
  socket: string;
  processes: PeerProcess[];
  /** Imports an OCI archive into the node's image store (where the kubelet finds it). */
  importImage(archive: string): Promise<void>;
}

/**
 * Starts containerd in the node's namespaces and imports the sandbox image. It needs no
 * apiserver, so the playground runs it (and the meshid image's import) while the apiserver
 * boots.
 */
export async function startContainerRuntime(ns: NodeNamespace, binaries: NodeBinaries, dir: string, detached: boolean): Promise<ContainerRuntime> {
  const root = ns.root;
  const socket = join(root, 'containerd', 'containerd.sock');
  const config = join(root, 'containerd.toml');
  const cniDir = join(root, 'cni');
  await writeFile(config, containerdToml(root, socket, cniDir));
  await mkdir(cniDir, { recursive: true });
  await writeFile(join(cniDir, '10-meshid.conflist'), JSON.stringify(cniConfig(ns.network), null, 2));
  const [command, argv] = ns.enter(binaries.containerd, ['--config', config]);
  const containerd = spawnPeer('containerd', command, argv, { logFile: join(root, 'logs', 'containerd.log'), detached, record: pidRecord(dir), env: nodeEnv(binaries) });
  await waitForPeer(async () => (await stat(socket).catch(() => undefined))?.isSocket() === true, containerd, 'containerd', NODE_LOGS);
  const importImage = async (archive: string): Promise<void> => {
    await run(binaries.ctr, ['--address', socket, '--namespace', 'k8s.io', 'images', 'import', '--local', archive], { maxBuffer: 4 * 1024 * 1024 });
  };
  const pauseArchive = join(root, 'pause.tar');
  await buildPauseImage(binaries.pause, pauseArchive);
  await importImage(pauseArchive);
  return { socket, processes: [containerd], importImage };
}

/** The shim and runc are found on PATH, next to containerd and in Debian's /usr/sbin. */
function nodeEnv(binaries: NodeBinaries): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${join(binaries.containerd, '..')}:/usr/sbin:/usr/bin:/sbin:/bin` };
}

/**
 * Starts the kubelet on the runtime, with CNI's bridge for pods, kube-proxy for Services and
 * kube-scheduler beside the apiserver. Resolves once the Node object says Ready.
 */
export async function startNode(cluster: LocalCluster, ns: NodeNamespace, runtime: ContainerRuntime, binaries: NodeBinaries, progress: Progress, detached: boolean): Promise<PlaygroundNode> {
  const started = performance.now();
  const n = ns.network;
  const root = ns.root;
  const logs = join(root, 'logs');
  const processes: PeerProcess[] = [];
  const env = nodeEnv(binaries);
  const spawnIn = (name: string, binary: string, args: string[]): PeerProcess => {
    const [command, argv] = ns.enter(binary, args);
    const p = spawnPeer(name, command, argv, { logFile: join(logs, `${name}.log`), detached, record: pidRecord(cluster.dir), env });
    processes.push(p);
    return p;
  };

  progress.start(`Starting the node ${n.nodeName}: kubelet, kube-proxy, kube-scheduler`);
  const admin = loadKubeConfig({ kubeconfig: cluster.kubeconfigs.admin });
  // The apiserver may use the kubelet API (exec, logs, port-forward), as kubeadm binds it.
  await applyObjects(admin, [
    <KubernetesObject>{
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'meshid-playground:apiserver-kubelet' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:kubelet-api-admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: KUBELET_CLIENT_USER }],
    },
  ]);
  const kubeletKubeconfig = await cluster.clientKubeconfig('kubelet', `system:node:${n.nodeName}`, ['system:nodes']);
  const serving = await cluster.servingCertificate('kubelet', { commonName: `system:node:${n.nodeName}`, ips: [n.nodeIp] });
  const kubeletConfig = join(root, 'kubelet.yaml');
  const resolvConf = join(root, 'resolv.conf');
  // Pods get cluster DNS from the kubelet; nothing falls back to the host's resolvers.
  await writeFile(resolvConf, '');
  await writeFile(kubeletConfig, stringify(kubeletConfiguration(ns, cluster, serving, runtime.socket, resolvConf)));
  const kubelet = spawnIn('kubelet', binaries.kubelet, [
    `--config=${kubeletConfig}`,
    `--kubeconfig=${kubeletKubeconfig}`,
    `--node-ip=${n.nodeIp}`,
    `--hostname-override=${n.nodeName}`,
    '--v=1',
  ]);

  const proxyKubeconfig = await cluster.clientKubeconfig('kube-proxy', 'system:kube-proxy');
  const proxyConfig = join(root, 'kube-proxy.yaml');
  await writeFile(proxyConfig, stringify(kubeProxyConfiguration(n, proxyKubeconfig)));
  spawnIn('kube-proxy', binaries.kubeProxy, [`--config=${proxyConfig}`]);

  const schedulerKubeconfig = await cluster.clientKubeconfig('kube-scheduler', 'system:kube-scheduler');
  const scheduler = spawnPeer('kube-scheduler', binaries.kubeScheduler, [
    `--kubeconfig=${schedulerKubeconfig}`,
    `--authentication-kubeconfig=${schedulerKubeconfig}`,
    `--authorization-kubeconfig=${schedulerKubeconfig}`,
    '--leader-elect=false',
    '--secure-port=0',
  ], { logFile: join(logs, 'kube-scheduler.log'), detached, record: pidRecord(cluster.dir) });
  processes.push(scheduler);

  progress.update(`Starting the node ${n.nodeName}: waiting for it to be Ready`);
  const core = admin.makeApiClient(CoreV1Api);
  await waitForPeer(async () => {
    const node = await core.readNode({ name: n.nodeName }).catch(() => undefined);
    return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
  }, kubelet, `node ${n.nodeName}`, { ...NODE_LOGS, timeoutMs: READY_TIMEOUT_MS });
  const readyAfterMs = performance.now() - started;
  progress.succeed(`Node ${n.nodeName} is Ready at ${n.nodeIp} (${(readyAfterMs / 1000).toFixed(1)} s)`);
  return { name: n.nodeName, ip: n.nodeIp, processes, readyAfterMs };
}

function containerdToml(root: string, socket: string, cniDir: string): string {
  const q = (s: string) => `'${s}'`;
  return [
    'version = 4',
    `root = ${q(join(root, 'containerd', 'root'))}`,
    `state = ${q(join(root, 'containerd', 'state'))}`,
    // Nothing from the host's /etc/containerd.
    'imports = []',
    '[plugins]',
    "  [plugins.'io.containerd.server.v1.grpc']",
    `    address = ${q(socket)}`,
    "  [plugins.'io.containerd.server.v1.ttrpc']",
    `    address = ${q(`${socket}.ttrpc`)}`,
    "  [plugins.'io.containerd.internal.v1.opt']",
    `    path = ${q(join(root, 'containerd', 'opt'))}`,
    "  [plugins.'io.containerd.nri.v1.nri']",
    '    disable = true',
    "  [plugins.'io.containerd.cri.v1.images'.pinned_images]",
    `    sandbox = ${q(PAUSE_IMAGE)}`,
    "  [plugins.'io.containerd.cri.v1.runtime']",
    // This machine lacks CAP_SYS_RESOURCE: runc cannot lower a container's oom_score_adj.
    '    restrict_oom_score_adj = true',
    "    [plugins.'io.containerd.cri.v1.runtime'.cni]",
    "      bin_dirs = ['/usr/lib/cni', '/opt/cni/bin']",
    `      conf_dir = ${q(cniDir)}`,
    '',
  ].join('\n');
}

/** One bridge, addresses from a local range, no masquerading: pod addresses stay on the machine. */
function cniConfig(n: NodeNetwork): object {
  return {
    cniVersion: '1.0.0',
    name: 'meshid',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: n.podCidr, gateway: n.podGateway }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

function kubeletConfiguration(ns: NodeNamespace, cluster: LocalCluster, serving: { cert: string; key: string }, containerdSocket: string, resolvConf: string): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: ns.network.nodeIp,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: cluster.clientCaFile } },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${containerdSocket}`,
    // This machine's cgroups are v1, which kubelet 1.37 accepts only when told to.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    // One parent cgroup of the node's own, so that stopping it removes every cgroup it made.
    cgroupRoot: ns.cleanup.cgroupRoot,
    oomScoreAdj: 0,
    failSwapOn: false,
    clusterDomain: CLUSTER_DOMAIN,
    clusterDNS: [ns.network.nodeIp],
    resolvConf,
    volumePluginDir: join(ns.root, 'kubelet-plugins'),
    // A playground's disk is the developer's: evict only when it is nearly full.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '2%', 'imagefs.available': '2%', 'nodefs.inodesFree': '2%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    shutdownGracePeriod: '0s',
  };
}

function kubeProxyConfiguration(n: NodeNetwork, kubeconfig: string): object {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig },
    mode: 'iptables',
    hostnameOverride: n.nodeName,
    clusterCIDR: n.podCidr,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // Leave the kernel's connection-tracking limits alone: they are not the node's to change.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    // Services are reached from the host through the node's link (its Service range is routed there).
    nodePortAddresses: [`${n.nodeIp}/32`],
  };
}

