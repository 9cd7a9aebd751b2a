import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, DiscoveryV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, type Progress } from '../core/index.ts';
import {
  COREDNS_USER, coreDnsRbac, ensureCoreDns, ensureNodeBinaries, renderCorefile, spawnPeer, pidRecord, startCluster, stopPid,
  type LocalCluster, type PeerProcess,
} from '../cluster/index.ts';
import { buildImage } from '../image/index.ts';
import { HTTP_PORT, HTTPS_PORT, SERVICE_NAME, install } from '../install/index.ts';
import { CLUSTER_DOMAIN, DEFAULT_CA_PORT, caServiceNames } from '../contract/index.ts';
import { applyObjects, loadKubeConfig, writeExtension } from '../kube/index.ts';
import { createAuthority, issueLeaf, pemBundle } from '../pki/index.ts';
import { MESHID_NAMESPACE, publishedRoots } from './meshid-server.ts';
import { createNodeNamespace, stopNode, type NodeCleanup, type NodeNamespace } from './node-namespace.ts';
import { startContainerRuntime, startNode } from './node.ts';
import { demoManifests } from './demo-pods.ts';
import { DEMO_NAMESPACES } from './mesh.ts';

/** The Secret holding the playground server's HTTPS certificate, mounted by every replica. */
export const SERVING_SECRET = 'meshid-serving';
const SERVER_REPLICAS = 2;
const ROLLOUT_TIMEOUT_MS = 120_000;
const SERVICE_RULES_TIMEOUT_MS = 30_000;
const run = promisify(execFile);

export interface NodePlayground {
  cluster: LocalCluster;
  processes: PeerProcess[];
  cleanup: NodeCleanup;
  server: { http: string; https: string };
  ca: { address: string; rootCert: string; serverName?: string | undefined };
  agent: { socket: string };
  node: { name: string; ip: string; readyAfterMs: number };
  /** Milliseconds from the start of `up` to each phase's end: where boot time goes. */
  timings: BootTimings;
  stop(): Promise<void>;
}

export interface BootTimings {
  /** Peers, CoreDNS and the image present (built on a cold machine, checked when warm). */
  built: number;
  apiserverReady: number;
  nodeReady: number;
  /** meshid's image imported into the node's containerd (it overlaps the apiserver and the node). */
  imageReady: number;
  meshidReady: number;
  demoReady: number;
}

/**
 * `meshid up` on a Linux machine where it is root: a real one-node cluster, and meshid
 * installed in it as production runs it (server Deployment with its CA, agent DaemonSet),
 * from an image built from this checkout. Nothing of meshid runs as a host process.
 */
export async function startNodePlayground(dir: string, progress: Progress, detached: boolean, anonymousAuth: boolean): Promise<NodePlayground> {
  const started = performance.now();
  const at = (): number => performance.now() - started;
  const binaries = await ensureNodeBinaries({ progress });
  const coreDns = await ensureCoreDns({ progress });
  const image = await buildImage({ progress });
  const built = at();
  const ns = await createNodeNamespace(dir, binaries.pause, detached);
  let cluster: LocalCluster | undefined;
  // The node's own processes, kube-scheduler among them, which runs on the host side: the
  // node's teardown finds only what is in its namespaces.
  const nodeProcesses: PeerProcess[] = [];
  const stop = async (): Promise<void> => {
    await stopNode(ns.cleanup);
    for (const p of [...nodeProcesses].reverse()) await stopPid(p.pid);
    await cluster?.stop();
  };
  try {
    const n = ns.network;
    // containerd and the images need no apiserver: they get ready while it boots. Only
    // meshid's pods need meshid's image, so the node starts without waiting for its import.
    const runtimeReady = startContainerRuntime(ns, binaries, dir, detached).then((runtime) => {
      nodeProcesses.push(...runtime.processes);
      return runtime;
    });
    const imageImported = runtimeReady.then((runtime) => runtime.importImage(image.archive));
    // Both are awaited below; a failure is reported there.
    for (const later of [runtimeReady, imageImported]) later.catch(() => undefined);
    cluster = await startCluster({ dir, detached, progress, address: n.hostIp, nodeIp: n.nodeIp, serviceCidr: n.serviceCidr });
    const apiserverReady = at();
    progress.start('Starting containerd on the node');
    const runtime = await runtimeReady;
    progress.succeed('containerd runs on the node');
    const node = await startNode(cluster, ns, runtime, binaries, progress, detached);
    nodeProcesses.push(...node.processes);
    const nodeReady = at();
    const processes = [ns.holder, ...cluster.processes, ...runtime.processes, ...node.processes];
    const admin = loadKubeConfig({ kubeconfig: cluster.kubeconfigs.admin });

    progress.start('Starting cluster DNS (CoreDNS) on the node');
    await applyObjects(admin, coreDnsRbac());
    const dnsKubeconfig = await cluster.clientKubeconfig('coredns', COREDNS_USER);
    const corefile = join(ns.root, 'Corefile');
    await writeFile(corefile, renderCorefile({ listen: n.nodeIp, port: 53, kubeconfig: dnsKubeconfig, clusterDomain: CLUSTER_DOMAIN, serviceCidr: n.serviceCidr, podCidr: n.podCidr }));
    const [command, argv] = ns.enter(coreDns, ['-conf', corefile]);
    processes.push(spawnPeer('coredns', command, argv, { logFile: join(ns.root, 'logs', 'coredns.log'), detached, record: pidRecord(dir) }));
    progress.succeed(`Cluster DNS answers for ${CLUSTER_DOMAIN} at ${n.nodeIp}`);

    progress.start(`Importing ${image.name} into the node's containerd`);
    await imageImported;
    const imageReady = at();
    progress.succeed(`${image.name} is in the node's containerd`);
    await install(admin, { namespace: MESHID_NAMESPACE, anonymousAuth, image: image.name, replicas: SERVER_REPLICAS, tlsSecret: SERVING_SECRET }, progress);
    progress.start(`Waiting for ${SERVER_REPLICAS} meshid server pods and the agent`);
    const core = admin.makeApiClient(CoreV1Api);
    const service = await core.readNamespacedService({ namespace: MESHID_NAMESPACE, name: SERVICE_NAME });
    const clusterIp = service.spec?.clusterIP ?? '';
    const servingCa = await writeServingSecret(core, clusterIp);
    await waitForRollout(admin, progress, 'meshid', [
      { namespace: MESHID_NAMESPACE, name: 'meshid', kind: 'Deployment' },
      { namespace: MESHID_NAMESPACE, name: 'meshid-agent', kind: 'DaemonSet' },
    ]);
    await waitForServiceRules(admin, ns, [{ namespace: MESHID_NAMESPACE, name: SERVICE_NAME }], progress);
    const meshidReady = at();
    progress.succeed(`meshid runs as ${SERVER_REPLICAS} server pods behind Service ${SERVICE_NAME} (${clusterIp}) and an agent on ${node.name}`);

    progress.start(`Starting the demo (sleep and httpbin) in ${DEMO_NAMESPACES.join(' and ')}`);
    for (const namespace of DEMO_NAMESPACES) await applyObjects(admin, demoManifests(namespace, image.name));
    await waitForRollout(admin, progress, 'the demo', DEMO_NAMESPACES.flatMap((namespace) => (['sleep', 'httpbin'] as const).map((name) => ({ namespace, name, kind: 'Deployment' as const }))));
    await waitForServiceRules(admin, ns, DEMO_NAMESPACES.map((namespace) => ({ namespace, name: 'httpbin' })), progress);
    const demoReady = at();
    progress.succeed(`sleep and httpbin run as pods in ${DEMO_NAMESPACES.join(' and ')}, with certificates from the agent's socket`);

    const https = `https://${clusterIp}:${HTTPS_PORT}`;
    // Zero-touch for the sample users: their contexts know where meshid is and which CA signs it.
    for (const file of Object.values(cluster.kubeconfigs)) {
      const context = loadKubeConfig({ kubeconfig: file }).getCurrentContext();
      await writeExtension(file, context, { server: https, 'certificate-authority-data': Buffer.from(servingCa).toString('base64') });
    }
    const rootCert = join(dir, 'pki', 'workload-ca-root.pem');
    await writeFile(rootCert, await publishedRoots(admin));
    return {
      cluster,
      processes,
      cleanup: ns.cleanup,
      server: { http: `http://${clusterIp}:${HTTP_PORT}`, https },
      ca: { address: `${clusterIp}:${DEFAULT_CA_PORT}`, rootCert, serverName: caServiceNames(MESHID_NAMESPACE)[0] },
      // The DaemonSet's hostPath, as the host sees it through the node's masked /run.
      agent: { socket: join(ns.root, 'run', 'sds', 'uds_path') },
      node: { name: node.name, ip: node.ip, readyAfterMs: node.readyAfterMs },
      timings: { built, apiserverReady, nodeReady, imageReady, meshidReady, demoReady },
      stop,
    };
  } catch (error) {
    progress.fail('The playground node did not start');
    await stop();
    throw error;
  }
}

/**
 * One serving certificate for every replica, from a playground CA that the sample users'
 * kubeconfigs name: it covers the Service's DNS names, its ClusterIP and loopback (the
 * dashboard's local proxy and port-forwards).
 */
async function writeServingSecret(core: CoreV1Api, clusterIp: string): Promise<string> {
  const ca = await createAuthority('meshid-playground-serving-ca');
  const names = [SERVICE_NAME, `${SERVICE_NAME}.${MESHID_NAMESPACE}`, `${SERVICE_NAME}.${MESHID_NAMESPACE}.svc`, `${SERVICE_NAME}.${MESHID_NAMESPACE}.svc.${CLUSTER_DOMAIN}`, 'localhost'];
  const leaf = await issueLeaf(ca, { commonName: SERVICE_NAME, usage: 'server', dnsNames: names, ips: [clusterIp, '127.0.0.1'] });
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  await core.createNamespacedSecret({
    namespace: MESHID_NAMESPACE,
    body: { metadata: { name: SERVING_SECRET }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(pemBundle(leaf.certPem, ca.certPem)), 'tls.key': b64(leaf.keyPem) } },
  });
  return ca.certPem;
}

/**
 * Waits until kube-proxy has written the rules that send each Service to every Ready
 * endpoint. A pod is Ready before kube-proxy has synced (a second or so later), and until
 * then a call to the ClusterIP finds no route (the node has no default route): "ready"
 * must mean a first call works.
 */
async function waitForServiceRules(admin: KubeConfig, ns: NodeNamespace, services: ReadonlyArray<{ namespace: string; name: string }>, progress: Progress): Promise<void> {
  const discovery = admin.makeApiClient(DiscoveryV1Api);
  const deadline = Date.now() + SERVICE_RULES_TIMEOUT_MS;
  let missing: string[] = [];
  while (Date.now() < deadline) {
    const [command, argv] = ns.enter('iptables-save', ['-t', 'nat']);
    const rules = await run(command, argv, { maxBuffer: 16 * 1024 * 1024 }).then(({ stdout }) => stdout, () => '');
    missing = [];
    for (const service of services) {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: service.namespace, labelSelector: `kubernetes.io/service-name=${service.name}` });
      for (const slice of slices.items) {
        for (const endpoint of slice.endpoints) {
          if (endpoint.conditions?.ready !== true) continue;
          for (const address of endpoint.addresses) {
            for (const port of slice.ports ?? []) {
              // kube-proxy's comment on an endpoint's rule: "<ns>/<service>:<port name> -> <ip>:<port>"
              const comment = `${service.namespace}/${service.name}:${port.name ?? ''} -> ${address}:${port.port ?? ''}`;
              if (!rules.includes(comment)) missing.push(comment);
            }
          }
        }
      }
    }
    if (missing.length === 0) return;
    progress.update(`Waiting for kube-proxy to route ${missing.length} Service endpoints`);
    await sleep(200);
  }
  throw new MeshidError('ERR_CLUSTER_NOT_READY', `kube-proxy did not route ${missing.join(', ')} within ${SERVICE_RULES_TIMEOUT_MS / 1000} s`, {
    hint: 'See node/logs/kube-proxy.log in the playground directory.',
  });
}

interface Workload {
  namespace: string;
  name: string;
  kind: 'Deployment' | 'DaemonSet';
}

/** Waits until every workload has all its pods Ready, saying how many are. */
async function waitForRollout(admin: KubeConfig, progress: Progress, what: string, workloads: readonly Workload[]): Promise<void> {
  const apps = admin.makeApiClient(AppsV1Api);
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const counts = await Promise.all(
      workloads.map(async (w) => {
        if (w.kind === 'Deployment') {
          const d = await apps.readNamespacedDeployment({ namespace: w.namespace, name: w.name }).catch(() => undefined);
          return { w, ready: d?.status?.readyReplicas ?? 0, wanted: d?.spec?.replicas ?? 1 };
        }
        const ds = await apps.readNamespacedDaemonSet({ namespace: w.namespace, name: w.name }).catch(() => undefined);
        return { w, ready: ds?.status?.numberReady ?? 0, wanted: Math.max(1, ds?.status?.desiredNumberScheduled ?? 1) };
      }),
    );
    last = counts.map((c) => `${c.w.namespace}/${c.w.name} ${c.ready}/${c.wanted}`).join(', ');
    progress.update(`Waiting for ${what}: ${last}`);
    if (counts.every((c) => c.ready >= c.wanted)) return;
    await sleep(500);
  }
  throw new MeshidError('ERR_CLUSTER_NOT_READY', `${what} did not become ready in ${ROLLOUT_TIMEOUT_MS / 1000} s (${last})`, {
    hint: 'Look at `kubectl describe pods` in those namespaces and at node/logs/kubelet.log in the playground directory.',
  });
}
