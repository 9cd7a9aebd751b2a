import { mkdir, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError, type Progress } from '../core/index.ts';
import { MESHID_BIN, freePort, spawnPeer, pidRecord, waitForPeer, type LocalCluster, type PeerProcess } from '../cluster/index.ts';
import { AGENT_SERVICE_ACCOUNT } from '../install/index.ts';
import { CA_AUDIENCE, loadKubeConfig, serviceAccountKubeconfig } from '../kube/index.ts';
import { MESHID_NAMESPACE } from './meshid-server.ts';

const TOKEN_SECONDS = 48 * 60 * 60;
/** Where the host-process peers' logs are, for the hint of a failed start. */
const HOST_LOGS = { logDir: 'logs', intervalMs: 100 };
export const DEMO_NAMESPACES = ['foo', 'bar'] as const;

export interface PlaygroundMesh {
  processes: PeerProcess[];
  agent: { socket: string };
  /** Per namespace: sleep's control URL (plain HTTP) and httpbin's mTLS address. */
  demo: Record<string, { sleep: string; httpbin: string }>;
}

/**
 * One SDS agent (the playground has one "node") and Istio's demo: sleep and httpbin in foo
 * and bar, each a process with its own projected service-account token, holding only what
 * the agent hands them.
 */
export async function startPlaygroundMesh(cluster: LocalCluster, caAddress: string, progress: Progress, detached: boolean): Promise<PlaygroundMesh> {
  const admin = loadKubeConfig({ kubeconfig: cluster.kubeconfigs.admin });
  const processes: PeerProcess[] = [];
  const log = (name: string) => join(cluster.dir, 'logs', `${name}.log`);
  progress.start('Starting the SDS agent and the demo workloads');
  try {
    const kubeconfig = join(cluster.dir, 'kubeconfigs', 'meshid-agent.kubeconfig');
    await writeFile(kubeconfig, await serviceAccountKubeconfig(admin, MESHID_NAMESPACE, AGENT_SERVICE_ACCOUNT, TOKEN_SECONDS), { mode: 0o600 });
    const socket = join(cluster.dir, 'sds', 'uds_path');
    const agent = spawnPeer('meshid-agent', process.execPath, [MESHID_BIN, 'agent', '--kubeconfig', kubeconfig, '-n', MESHID_NAMESPACE, '--socket', socket, '--ca-address', caAddress], { logFile: log('meshid-agent'), detached, record: pidRecord(cluster.dir) });
    processes.push(agent);
    await waitForPeer(async () => (await stat(socket).catch(() => undefined))?.isSocket() === true, agent, 'the SDS agent socket', HOST_LOGS);

    const tokens = join(cluster.dir, 'tokens');
    await mkdir(tokens, { recursive: true, mode: 0o700 });
    const demo: PlaygroundMesh['demo'] = {};
    for (const namespace of DEMO_NAMESPACES) {
      const entry = { sleep: '', httpbin: '' };
      for (const role of ['httpbin', 'sleep'] as const) {
        const tokenFile = join(tokens, `${namespace}-${role}.jwt`);
        await writeFile(tokenFile, await projectedToken(admin, namespace, role), { mode: 0o600 });
        const port = await freePort();
        const name = `${role}.${namespace}`;
        const workload = spawnPeer(name, process.execPath, [MESHID_BIN, 'playground', 'workload', '--role', role, '-n', namespace, '--socket', socket, '--token-file', tokenFile, '--port', String(port)], { logFile: log(name), detached, record: pidRecord(cluster.dir) });
        processes.push(workload);
        await waitForPeer(() => portOpen(port), workload, name, HOST_LOGS);
        entry[role] = role === 'sleep' ? `http://127.0.0.1:${port}` : `127.0.0.1:${port}`;
      }
      demo[namespace] = entry;
    }
    progress.succeed(`SDS agent on ${socket}; sleep and httpbin run in ${DEMO_NAMESPACES.join(' and ')} with mTLS certificates from it`);
    return { processes, agent: { socket }, demo };
  } catch (error) {
    for (const p of processes.reverse()) p.child.kill('SIGTERM');
    throw error;
  }
}

/** What the kubelet would mount: a service-account token for audience istio-ca. */
async function projectedToken(admin: KubeConfig, namespace: string, serviceAccount: string): Promise<string> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'meshid.io/mesh': 'enabled' } } } }).catch(() => undefined);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } }).catch(() => undefined);
  const answer = await core.createNamespacedServiceAccountToken({ namespace, name: serviceAccount, body: { spec: { audiences: [CA_AUDIENCE], expirationSeconds: TOKEN_SECONDS } } });
  if (!answer.status?.token) throw new MeshidError('ERR_CLUSTER_START_FAILED', `no token for ${namespace}/${serviceAccount}`);
  return answer.status.token;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

