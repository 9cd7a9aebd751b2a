import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshidError, silentProgress, type Progress } from '../core/index.ts';
import { CLUSTER_DOMAIN } from '../contract/index.ts';
import { applyObjects, loadKubeConfig } from '../kube/index.ts';
import { ensurePeerBinaries, type PeerBinaries } from './build.ts';
import { renderKubeconfig, type UserCredential } from './kubeconfig.ts';
import { createAuthority, createServiceAccountSigningKey, issueLeaf, type Authority, type KeyPairPem } from '../pki/index.ts';
import { freePort, pidRecord, spawnPeer, stopPid, type PeerProcess } from './processes.ts';
import { sampleRbac, staticTokenUsers, tokenAuthFile, type SampleUser } from './users.ts';

/** The issuer written into service-account tokens, as in a kubeadm cluster. */
export const SERVICE_ACCOUNT_ISSUER = `https://kubernetes.default.svc.${CLUSTER_DOMAIN}`;

/** The user kube-apiserver is to kubelets; the node's RBAC lets it use the kubelet API. */
export const KUBELET_CLIENT_USER = 'kube-apiserver-kubelet-client';
/** Service addresses; they exist only inside the machine (routed to the node, if any). */
export const SERVICE_CIDR = '10.96.0.0/16';

/** The first address of a Service range: the `kubernetes` Service's ClusterIP. */
function firstServiceIp(cidr: string): string {
  const [a, b, c, d] = (cidr.split('/')[0] ?? '').split('.').map(Number);
  return `${a}.${b}.${c}.${(d ?? 0) + 1}`;
}

/** The CLI entry point; playground helpers (exec plugin, server) run through it. */
export const MESHID_BIN = fileURLToPath(new URL('../../bin/meshid', import.meta.url));
const READY_TIMEOUT_MS = 90_000;

export interface ClusterOptions {
  dir: string;
  detached?: boolean;
  progress?: Progress;
  binaries?: PeerBinaries;
  /**
   * The address kube-apiserver listens on and advertises. Loopback by default; a playground
   * with a node gives its host-side link address, so that pods reach it through the
   * `kubernetes` Service as on a real cluster.
   */
  address?: string;
  /** The node's IP: the apiserver then reaches kubelets there, verifying their certificates. */
  nodeIp?: string;
  /** Service ClusterIPs (a /16 or smaller); default {@link SERVICE_CIDR}. */
  serviceCidr?: string;
}

export interface LocalCluster {
  dir: string;
  apiServer: string;
  kubeconfigs: Record<SampleUser, string>;
  /** PEM of the authority that signs kubeconfig client certificates (`--client-ca-file`). */
  clientCaFile: string;
  /** The kubectl built alongside the cluster, of the same version. */
  kubectl: string;
  /** PEM file of the authority that signs serving certificates (apiserver, etcd, kubelet). */
  caFile: string;
  /** Writes `<dir>/kubeconfigs/<name>.kubeconfig` for a client certificate of this subject. */
  clientKubeconfig(name: string, commonName: string, organizations?: string[]): Promise<string>;
  /** Issues a serving certificate from the cluster CA into `<dir>/pki/<name>.{crt,key}`. */
  servingCertificate(name: string, subject: { commonName: string; ips: string[]; dnsNames?: string[] }): Promise<{ cert: string; key: string }>;
  processes: PeerProcess[];
  /** Milliseconds from the first peer's start: to /readyz, and to a usable playground. */
  timings: { apiserverReady: number; total: number };
  /** SIGKILLs one peer, as a crash would, and waits for it to be gone; its data stays. */
  kill(name: ClusterPeer): Promise<void>;
  /**
   * Starts a peer again with its original flags and data dir (killing it first if it still
   * runs), then waits until kube-apiserver's /readyz answers 200 again.
   */
  restart(name: ClusterPeer): Promise<void>;
  stop(): Promise<void>;
}

/** The processes a local cluster is made of; fault tests kill and restart them by name. */
export type ClusterPeer = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

type Paths = {
  pki: string;
  logs: string;
  etcdData: string;
  kubeconfigs: string;
  credentials: string;
};

/**
 * Boots a real etcd, kube-apiserver and kube-controller-manager on loopback with fresh
 * keys, then writes kubeconfigs and RBAC for the sample users. Everything lives in `dir`.
 */
export async function startCluster(options: ClusterOptions): Promise<LocalCluster> {
  const progress = options.progress ?? silentProgress;
  const binaries = options.binaries ?? (await ensurePeerBinaries({ progress }));
  const detached = options.detached ?? false;
  const paths = await prepareDir(options.dir);
  const address = options.address ?? '127.0.0.1';
  const serviceCidr = options.serviceCidr ?? SERVICE_CIDR;

  progress.start('Generating cluster certificates and keys');
  const pki = await writePki(paths.pki, [address, firstServiceIp(serviceCidr)]);
  const users = staticTokenUsers();
  const tokenFile = join(paths.pki, 'tokens.csv');
  await writeSecret(tokenFile, tokenAuthFile([users.bob, users.carol]));
  const carolTokenFile = join(paths.credentials, 'carol.token');
  await writeSecret(carolTokenFile, users.carol.token);
  progress.succeed('Generated cluster certificates and keys');

  const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const apiServer = `https://${address}:${apiPort}`;
  const processes: PeerProcess[] = [];
  /** How each peer was started, so `restart` brings it back exactly as it was. */
  const commands = new Map<ClusterPeer, { binary: string; args: string[] }>();
  const stop = async (): Promise<void> => {
    // Reverse start order: controllers, then the apiserver, then its store.
    for (const p of [...processes].reverse()) await stopPid(p.pid);
  };
  const spawnLogged = (name: ClusterPeer, binary: string, args: string[]): PeerProcess => {
    const peer = spawnPeer(name, binary, args, { logFile: join(paths.logs, `${name}.log`), detached, record: pidRecord(options.dir) });
    commands.set(name, { binary, args });
    // A restarted peer takes its predecessor's place, keeping the start order `stop` relies on.
    const index = processes.findIndex((p) => p.name === name);
    if (index >= 0) processes[index] = peer;
    else processes.push(peer);
    return peer;
  };
  const kill = async (name: ClusterPeer): Promise<void> => {
    const peer = processes.find((p) => p.name === name);
    if (!peer) throw new MeshidError('ERR_INVALID_ARGUMENT', `the cluster has no peer named ${name}`);
    peer.child.kill('SIGKILL');
    await peer.exited;
  };
  const restart = async (name: ClusterPeer): Promise<void> => {
    const command = commands.get(name);
    if (!command) throw new MeshidError('ERR_INVALID_ARGUMENT', `the cluster has no peer named ${name}`);
    await kill(name);
    // Only the restarted peer counts as a failed start: another one may have died of the
    // outage itself (the controller manager exits when it cannot reach the apiserver).
    await waitForReady(apiServer, pki, [spawnLogged(name, command.binary, command.args)], paths.logs);
  };

  const bootStarted = performance.now();
  try {
    progress.start('Starting etcd and kube-apiserver');
    const etcdUrl = `https://127.0.0.1:${etcdPort}`;
    spawnLogged('etcd', binaries.etcd, [
      '--name=meshid',
      `--data-dir=${paths.etcdData}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=meshid=http://127.0.0.1:${etcdPeerPort}`,
      `--cert-file=${pki.etcd.cert}`,
      `--key-file=${pki.etcd.key}`,
      `--trusted-ca-file=${pki.ca.cert}`,
      '--client-cert-auth',
      '--log-level=warn',
    ]);
    spawnLogged('kube-apiserver', binaries.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      `--etcd-cafile=${pki.ca.cert}`,
      `--etcd-certfile=${pki.etcdClient.cert}`,
      `--etcd-keyfile=${pki.etcdClient.key}`,
      `--bind-address=${address}`,
      // Explicit, so the apiserver never looks for a default route to guess one.
      `--advertise-address=${address}`,
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${pki.apiserver.cert}`,
      `--tls-private-key-file=${pki.apiserver.key}`,
      `--client-ca-file=${pki.clientCa.cert}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${pki.serviceAccount.pub}`,
      `--service-account-signing-key-file=${pki.serviceAccount.key}`,
      // The apiserver's own audience only, as on a real cluster: a token for the mesh CA
      // (`istio-ca`) is not an API credential, and a default pod token is not a CA credential.
      `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-cluster-ip-range=${serviceCidr}`,
      // A loopback advertise address cannot be an Endpoints IP: without a node nothing needs
      // the `kubernetes` Service's endpoints; with one, pods reach the apiserver through them.
      `--endpoint-reconciler-type=${options.nodeIp ? 'lease' : 'none'}`,
      '--profiling=false',
      ...(options.nodeIp ? kubeletFlags(pki) : []),
    ]);
    await waitForReady(apiServer, pki, processes, paths.logs);
    const apiserverReady = performance.now() - bootStarted;
    progress.succeed(`kube-apiserver is ready at ${apiServer}`);

    progress.start('Writing kubeconfigs and RBAC for admin, alice, bob and carol');
    const kubeconfigs = await writeKubeconfigs(paths.kubeconfigs, apiServer, pki, users.bob.token, carolTokenFile);
    spawnLogged('kube-controller-manager', binaries.kubeControllerManager, [
      `--kubeconfig=${kubeconfigs.controllerManager}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--service-account-private-key-file=${pki.serviceAccount.key}`,
      `--root-ca-file=${pki.ca.cert}`,
      // One service account per controller, each bound to its bootstrap role, as kubeadm does.
      '--use-service-account-credentials=true',
      // Its default is a host path it creates (/usr/libexec/kubernetes/...): keep it inside.
      `--flex-volume-plugin-dir=${join(options.dir, 'flexvolume')}`,
    ]);
    await applyObjects(loadKubeConfig({ kubeconfig: kubeconfigs.users.admin }), sampleRbac());
    progress.succeed('Wrote kubeconfigs and RBAC for admin, alice, bob and carol');

    const timings = { apiserverReady, total: performance.now() - bootStarted };
    const clientKubeconfig = async (name: string, commonName: string, organizations: string[] = []): Promise<string> => {
      const file = join(paths.kubeconfigs, `${name}.kubeconfig`);
      const credential = await issueLeaf(pki.clientAuthority, { commonName, organizations, usage: 'client' });
      await writeSecret(file, renderKubeconfig(apiServer, pki.caPem, name, { type: 'certificate', ...credential }));
      return file;
    };
    const servingCertificate = async (name: string, subject: { commonName: string; ips: string[]; dnsNames?: string[] }): Promise<FilePair> => {
      const leaf = await issueLeaf(pki.authority, { ...subject, usage: 'server' });
      const files = { cert: join(paths.pki, `${name}.crt`), key: join(paths.pki, `${name}.key`) };
      await writeFile(files.cert, leaf.certPem);
      await writeSecret(files.key, leaf.keyPem);
      return files;
    };
    return {
      dir: options.dir, apiServer, kubeconfigs: kubeconfigs.users, clientCaFile: pki.clientCa.cert, caFile: pki.ca.cert, kubectl: binaries.kubectl,
      processes, timings, kill, restart, stop, clientKubeconfig, servingCertificate,
    };
  } catch (error) {
    progress.fail('The local cluster did not start');
    await stop();
    throw error;
  }
}

async function prepareDir(dir: string): Promise<Paths> {
  const paths: Paths = {
    pki: join(dir, 'pki'),
    logs: join(dir, 'logs'),
    etcdData: join(dir, 'etcd'),
    kubeconfigs: join(dir, 'kubeconfigs'),
    credentials: join(dir, 'credentials'),
  };
  // Every `up` starts from fresh keys and an empty store: stale state from an older run
  // would make results depend on history.
  for (const p of Object.values<string>(paths)) await rm(p, { recursive: true, force: true });
  for (const p of Object.values<string>(paths)) await mkdir(p, { recursive: true, mode: 0o700 });
  return paths;
}

interface FilePair {
  cert: string;
  key: string;
}

interface Pki {
  authority: Authority;
  clientAuthority: Authority;
  ca: FilePair;
  clientCa: FilePair;
  apiserver: FilePair;
  etcd: FilePair;
  etcdClient: FilePair;
  /** How the apiserver proves itself to kubelets (exec, logs, port-forward). */
  kubeletClient: FilePair;
  serviceAccount: { key: string; pub: string };
  clients: Record<'admin' | 'alice' | 'controllerManager', KeyPairPem>;
  caPem: string;
}

async function writePki(dir: string, apiserverIps: string[]): Promise<Pki> {
  const ca = await createAuthority('meshid-playground-ca');
  // Client certificates chain to their own authority, as in kubeadm, so that trusting the
  // serving CA never means trusting a client and vice versa.
  const clientCa = await createAuthority('meshid-playground-client-ca');
  const loopback = { dnsNames: ['localhost'], ips: ['127.0.0.1'] };
  const apiserver = await issueLeaf(ca, {
    commonName: 'kube-apiserver',
    usage: 'server',
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', `kubernetes.default.svc.${CLUSTER_DOMAIN}`],
    ips: [...new Set(['127.0.0.1', ...apiserverIps])],
  });
  const etcd = await issueLeaf(ca, { commonName: 'etcd', usage: 'both', ...loopback });
  const etcdClient = await issueLeaf(ca, { commonName: 'kube-apiserver-etcd-client', usage: 'client' });
  const clients = {
    admin: await issueLeaf(clientCa, { commonName: 'admin', organizations: ['system:masters'], usage: 'client' }),
    alice: await issueLeaf(clientCa, { commonName: 'alice', organizations: ['dev'], usage: 'client' }),
    controllerManager: await issueLeaf(clientCa, { commonName: 'system:kube-controller-manager', usage: 'client' }),
  };
  const kubeletClient = await issueLeaf(clientCa, { commonName: KUBELET_CLIENT_USER, usage: 'client' });
  const serviceAccount = await createServiceAccountSigningKey();

  const pair = async (name: string, value: KeyPairPem): Promise<FilePair> => {
    const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    await writeFile(files.cert, value.certPem);
    await writeSecret(files.key, value.keyPem);
    return files;
  };
  const saFiles = { key: join(dir, 'sa.key'), pub: join(dir, 'sa.pub') };
  await writeSecret(saFiles.key, serviceAccount.privatePem);
  await writeFile(saFiles.pub, serviceAccount.publicPem);
  return {
    authority: ca,
    clientAuthority: clientCa,
    ca: await pair('ca', ca),
    clientCa: await pair('client-ca', clientCa),
    apiserver: await pair('apiserver', apiserver),
    etcd: await pair('etcd', etcd),
    etcdClient: await pair('apiserver-etcd-client', etcdClient),
    kubeletClient: await pair('apiserver-kubelet-client', kubeletClient),
    serviceAccount: saFiles,
    clients,
    caPem: ca.certPem,
  };
}

/**
 * The apiserver's side of talking to kubelets: it presents its own client certificate, checks
 * theirs against the cluster CA, and reaches them by IP only. A host name lookup would send a
 * DNS query off the machine.
 */
function kubeletFlags(pki: Pki): string[] {
  return [
    `--kubelet-client-certificate=${pki.kubeletClient.cert}`,
    `--kubelet-client-key=${pki.kubeletClient.key}`,
    `--kubelet-certificate-authority=${pki.ca.cert}`,
    '--kubelet-preferred-address-types=InternalIP',
  ];
}

async function writeSecret(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  await chmod(path, 0o600);
}

async function writeKubeconfigs(
  dir: string,
  server: string,
  pki: Pki,
  bobToken: string,
  carolTokenFile: string,
): Promise<{ users: Record<SampleUser, string>; controllerManager: string }> {
  const credentials: Record<SampleUser | 'kube-controller-manager', UserCredential> = {
    admin: { type: 'certificate', ...pki.clients.admin },
    alice: { type: 'certificate', ...pki.clients.alice },
    bob: { type: 'token', token: bobToken },
    carol: { type: 'exec', command: process.execPath, args: [MESHID_BIN, 'playground', 'credential', '--token-file', carolTokenFile] },
    'kube-controller-manager': { type: 'certificate', ...pki.clients.controllerManager },
  };
  const written: Partial<Record<keyof typeof credentials, string>> = {};
  for (const [name, credential] of Object.entries(credentials) as [keyof typeof credentials, UserCredential][]) {
    const file = join(dir, `${name}.kubeconfig`);
    await writeSecret(file, renderKubeconfig(server, pki.caPem, name, credential));
    written[name] = file;
  }
  const need = (name: keyof typeof credentials): string => written[name] ?? '';
  return {
    users: { admin: need('admin'), alice: need('alice'), bob: need('bob'), carol: need('carol') },
    controllerManager: need('kube-controller-manager'),
  };
}

/** Polls /readyz with admin credentials; fails fast, with the log tail, if a peer exits. */
async function waitForReady(apiServer: string, pki: Pki, processes: PeerProcess[], logs: string): Promise<void> {
  let died: PeerProcess | undefined;
  for (const p of processes) void p.exited.then(() => (died ??= p));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (died) {
      const log = await readFile(join(logs, `${died.name}.log`), 'utf8').catch(() => '');
      throw new MeshidError('ERR_CLUSTER_START_FAILED', `${died.name} exited during start-up:\n${log.split('\n').slice(-15).join('\n')}`, {
        hint: 'The full log is under the playground directory, in logs/.',
      });
    }
    last = await probe(`${apiServer}/readyz`, pki).catch((error: unknown) => String(error));
    if (last === '200') return;
    await sleep(100);
  }
  throw new MeshidError('ERR_CLUSTER_NOT_READY', `kube-apiserver was not ready after ${READY_TIMEOUT_MS / 1000} s (last answer: ${last})`, {
    hint: 'Look at logs/kube-apiserver.log and logs/etcd.log in the playground directory.',
  });
}

function probe(url: string, pki: Pki): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: pki.caPem, cert: pki.clients.admin.certPem, key: pki.clients.admin.keyPem, timeout: 2000 }, (res) => {
      res.resume();
      resolve(String(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
