import { writeFile, chmod } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MESHID_VERSION, MeshidError, type Progress } from '../core/index.ts';
import { MESHID_BIN, freePort, spawnPeer, pidRecord, stopPid, type LocalCluster, type PeerProcess } from '../cluster/index.ts';
import { install, SERVICE_ACCOUNT } from '../install/index.ts';
import { ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY } from '../ca/index.ts';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig, serviceAccountKubeconfig, writeExtension } from '../kube/index.ts';
import { createAuthority, issueLeaf, pemBundle } from '../pki/index.ts';

export const MESHID_NAMESPACE = 'meshid-system';
const TOKEN_SECONDS = 48 * 60 * 60;

export interface PlaygroundServer {
  process: PeerProcess;
  http: string;
  https: string;
  caPem: string;
  /** The workload CA inside the server, and a file with its trust bundle. */
  workloadCa: { address: string; rootCert: string };
}

/** Where the host-process playground keeps the server's serving certificate and its own kubeconfig. */
export function playgroundServerFiles(clusterDir: string): { certFile: string; keyFile: string; kubeconfig: string } {
  return {
    certFile: join(clusterDir, 'pki', 'meshid-serving.crt'),
    keyFile: join(clusterDir, 'pki', 'meshid-serving.key'),
    kubeconfig: join(clusterDir, 'kubeconfigs', 'meshid-server.kubeconfig'),
  };
}

/**
 * Installs meshid into the playground cluster and runs its server as a local process. The
 * playground has no kubelet, so the Deployment stays at zero replicas and the process
 * authenticates with a TokenRequest token of the installed ServiceAccount: exactly the
 * identity, and so the RBAC, that an in-cluster pod would have.
 */
export async function startPlaygroundServer(cluster: LocalCluster, progress: Progress, detached: boolean, anonymousAuth = false): Promise<PlaygroundServer> {
  const admin = loadKubeConfig({ kubeconfig: cluster.kubeconfigs.admin });
  await install(admin, { namespace: MESHID_NAMESPACE, anonymousAuth, image: `meshid:${MESHID_VERSION}`, replicas: 0 }, progress);

  progress.start('Starting the meshid server');
  const { certFile, keyFile, kubeconfig } = playgroundServerFiles(cluster.dir);
  const ca = await createAuthority('meshid-playground-serving-ca');
  const leaf = await issueLeaf(ca, { commonName: 'meshid', usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] });
  await writeFile(certFile, pemBundle(leaf.certPem, ca.certPem));
  await writeFile(keyFile, leaf.keyPem, { mode: 0o600 });
  await writeFile(kubeconfig, await serviceAccountKubeconfig(admin, MESHID_NAMESPACE, SERVICE_ACCOUNT, TOKEN_SECONDS), { mode: 0o600 });
  await chmod(kubeconfig, 0o600);

  const [httpPort, httpsPort, caPort] = [await freePort(), await freePort(), await freePort()];
  const args = [
    MESHID_BIN, 'server', '--kubeconfig', kubeconfig, '-n', MESHID_NAMESPACE, '--host', '127.0.0.1',
    '--http-port', String(httpPort), '--https-port', String(httpsPort), '--tls-cert-file', certFile, '--tls-key-file', keyFile,
    '--ca', '--ca-port', String(caPort),
    ...(anonymousAuth ? ['--anonymous-auth'] : []),
  ];
  const server = spawnPeer('meshid-server', process.execPath, args, { logFile: join(cluster.dir, 'logs', 'meshid-server.log'), detached, record: pidRecord(cluster.dir) });
  const http = `http://127.0.0.1:${httpPort}`;
  const https = `https://127.0.0.1:${httpsPort}`;
  const rootCert = join(cluster.dir, 'pki', 'workload-ca-root.pem');
  try {
    await waitReady(`${http}/readyz`, server);
    // Zero-touch for the sample users: their contexts know where meshid is and which CA signs it.
    for (const file of Object.values(cluster.kubeconfigs)) {
      const context = loadKubeConfig({ kubeconfig: file }).getCurrentContext();
      await writeExtension(file, context, { server: https, 'certificate-authority-data': Buffer.from(ca.certPem).toString('base64') });
    }
    await writeFile(rootCert, await publishedRoots(admin));
  } catch (error) {
    // The cluster's stop knows nothing of this process: a server that never became ready must not outlive the playground.
    await stopPid(server.pid);
    throw error;
  }
  progress.succeed(`meshid server is ready at ${https} (and ${http}); workload CA at 127.0.0.1:${caPort}`);
  return { process: server, http, https, caPem: ca.certPem, workloadCa: { address: `127.0.0.1:${caPort}`, rootCert } };
}

/** The trust bundle as workloads see it: ConfigMap istio-ca-root-cert, published by the CA. */
export async function publishedRoots(admin: KubeConfig): Promise<string> {
  const api = admin.makeApiClient(CoreV1Api);
  for (let i = 0; i < 100; i++) {
    const roots = await api
      .readNamespacedConfigMap({ namespace: MESHID_NAMESPACE, name: ROOT_CONFIGMAP })
      .then((cm) => cm.data?.[ROOT_CONFIGMAP_KEY])
      .catch(() => undefined);
    if (roots) return roots;
    await sleep(100);
  }
  throw new MeshidError('ERR_CLUSTER_NOT_READY', `the workload CA did not publish ConfigMap ${ROOT_CONFIGMAP} within 10 s`, { hint: 'See logs/meshid-server.log in the playground directory.' });
}

async function waitReady(url: string, server: PeerProcess): Promise<void> {
  let exited: string | undefined;
  void server.exited.then((how) => (exited = how));
  for (let i = 0; i < 300; i++) {
    if (exited !== undefined) throw new MeshidError('ERR_CLUSTER_START_FAILED', `meshid server exited (${exited}) during start-up`, { hint: 'See logs/meshid-server.log in the playground directory.' });
    const status = await new Promise<number>((resolve) => {
      const req = request(url, { timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (status === 200) return;
    await sleep(100);
  }
  throw new MeshidError('ERR_CLUSTER_NOT_READY', 'meshid server was not ready after 30 s', { hint: 'See logs/meshid-server.log in the playground directory.' });
}
