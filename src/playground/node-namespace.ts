import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { z } from 'zod';
import { MeshidError } from '../core/index.ts';
import type { NodeCleanupSchema } from './env.ts';
import { spawnPeer, pidRecord, stopPid, isAlive, type PeerProcess } from '../cluster/index.ts';

const run = promisify(execFile);

/**
 * A playground node's addresses. They exist only inside this machine: the node lives in a
 * network namespace of its own, joined to the host by one veth pair, with no default route,
 * so nothing a pod sends can leave the machine (not even a DNS query). Each node on the
 * machine takes a slot, so that several playgrounds (a test run and a developer's) coexist.
 */
export interface NodeNetwork {
  slot: number;
  /** The host's end of the link: kube-apiserver listens here for the node and its pods. */
  hostIp: string;
  /** The node's end: its InternalIP, where the kubelet and cluster DNS serve. */
  nodeIp: string;
  linkPrefix: number;
  hostLink: string;
  podCidr: string;
  podGateway: string;
  /** Service ClusterIPs, routed from the host to the node (kube-proxy answers there). */
  serviceCidr: string;
  nodeName: string;
}

export const NODE_SLOTS = 8;

export function nodeNetwork(slot: number): NodeNetwork {
  return {
    slot,
    hostIp: `10.243.${slot}.1`,
    nodeIp: `10.243.${slot}.2`,
    linkPrefix: 30,
    hostLink: `meshid-node${slot}`,
    podCidr: `10.244.${slot}.0/24`,
    podGateway: `10.244.${slot}.1`,
    serviceCidr: `10.${96 + slot}.0.0/16`,
    nodeName: 'meshid-node',
  };
}

/**
 * Host paths the kubelet and containerd write to that have no flag (pod logs under /var/log,
 * netns and socket files under /run, /var/lib/kubelet's plugin sockets): inside the node's
 * private mount namespace each is a folder of the playground, so the host stays clean.
 */
const MASKED_PATHS = { '/var/lib': 'var-lib', '/var/log': 'var-log', '/run': 'run' } as const;

/**
 * Kernel-wide settings the kubelet changes at start (its "kernel tunables"). They are not per
 * namespace, so the node records them first and puts them back when it stops.
 */
export const KUBELET_SYSCTLS = ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes'] as const;

export interface NodeNamespace {
  /** Holds the node's mount and network namespaces open; every node process joins them. */
  holder: PeerProcess;
  /** `<dir>/node`: everything the node writes. */
  root: string;
  network: NodeNetwork;
  /** What the node changed on the host, so that `meshid down` can undo it from another process. */
  cleanup: NodeCleanup;
  /** argv prefix that runs a command inside the node's namespaces. */
  enter(command: string, args: string[]): [string, string[]];
}

/** What the node changed on the host, so that `meshid down` can undo it from another process. */
export type NodeCleanup = z.infer<typeof NodeCleanupSchema>;

/** Why this machine cannot run the node, or undefined when it can. */
export function nodeUnsupported(): string | undefined {
  if (process.platform !== 'linux') return `the node needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the node needs root (namespaces, cgroups, a bridge)';
  const missing = ['unshare', 'nsenter', 'ip', 'iptables', 'runc'].filter((tool) => !onPath(tool));
  if (missing.length > 0) return `missing ${missing.join(', ')} (Debian: util-linux, iproute2, iptables, runc)`;
  if (!existsSync('/usr/lib/cni/bridge') && !existsSync('/opt/cni/bin/bridge')) return 'missing the CNI plugins (Debian: containernetworking-plugins)';
  return undefined;
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']).some((dir) => dir && existsSync(join(dir, tool)));
}

/** Makes the node's namespaces, its link to the host and its folders. Root on Linux only. */
export async function createNodeNamespace(dir: string, pause: string, detached: boolean): Promise<NodeNamespace> {
  const root = join(dir, 'node');
  for (const sub of [...Object.values(MASKED_PATHS), 'logs']) await mkdir(join(root, sub), { recursive: true, mode: 0o700 });
  const mounts = Object.entries(MASKED_PATHS).map(([target, source]) => `mount --bind '${join(root, source)}' '${target}'`);
  const script = ['set -e', ...mounts, 'ip link set lo up', `exec '${pause}'`].join('\n');
  const holder = spawnPeer('node-namespaces', 'unshare', ['--mount', '--net', '--propagation', 'private', '--', 'sh', '-c', script], { logFile: join(root, 'logs', 'node-namespaces.log'), detached, record: pidRecord(dir) });
  const sysctls = await originalSysctls();
  let network: NodeNetwork | undefined;
  const cleanup: NodeCleanup = { holderPid: holder.pid, namespaces: [], cgroupRoot: `/meshid-${holder.pid}`, sysctls };
  try {
    await waitForExec(holder, pause);
    for (const kind of ['mnt', 'net']) cleanup.namespaces.push(await readlink(`/proc/${holder.pid}/ns/${kind}`));
    const n = await linkToHost(holder.pid);
    network = n;
    await ip(['addr', 'add', `${n.hostIp}/${n.linkPrefix}`, 'dev', n.hostLink]);
    await ip(['link', 'set', n.hostLink, 'up']);
    await run('nsenter', ['--target', String(holder.pid), '--net', '--', 'ip', 'addr', 'add', `${n.nodeIp}/${n.linkPrefix}`, 'dev', 'eth0']);
    await run('nsenter', ['--target', String(holder.pid), '--net', '--', 'ip', 'link', 'set', 'eth0', 'up']);
    // Pods and Services are reached through the node; the routes go with the link.
    await ip(['route', 'add', n.podCidr, 'via', n.nodeIp]);
    await ip(['route', 'add', n.serviceCidr, 'via', n.nodeIp]);
    await createCgroups(cleanup.cgroupRoot);
  } catch (error) {
    await stopNode(cleanup);
    if (error instanceof MeshidError) throw error;
    throw new MeshidError('ERR_CLUSTER_START_FAILED', `could not make the node's namespaces: ${(error as Error).message}`, {
      cause: error,
      hint: 'The node needs root, unshare and nsenter (util-linux) and iproute2; `meshid up --no-node` runs without one.',
    });
  }
  await writeFile(join(root, 'cleanup.json'), JSON.stringify(cleanup, null, 2) + '\n');
  if (!network) throw new MeshidError('ERR_CLUSTER_START_FAILED', 'the node has no link to the host');
  return {
    holder,
    root,
    network,
    cleanup,
    enter: (command, args) => ['nsenter', ['--target', String(holder.pid), '--mount', '--net', '--', command, ...args]],
  };
}

/**
 * Stops everything of the node, from any process: the pods' processes (by cgroup), every
 * process in the node's mount namespace (containerd, its shims, the kubelet, kube-proxy),
 * then the namespace holder, which takes the link, its routes and the bridge with it. Then
 * removes the node's cgroups and restores the kernel settings the kubelet changed.
 */
export async function stopNode(cleanup: NodeCleanup): Promise<void> {
  const inNode = await processesInNamespaces(cleanup.namespaces);
  // A teardown keeps no state, so nothing needs a graceful stop. The kubelet goes first, so
  // that it restarts nothing; then the containers (by cgroup), then the rest.
  for (const pid of inNode) if ((await comm(pid)) === 'kubelet') await stopPid(pid, 0);
  for (const pid of await cgroupProcesses(cleanup.cgroupRoot)) kill(pid);
  for (const pid of inNode) kill(pid);
  for (const pid of [...inNode, cleanup.holderPid]) await stopPid(pid, 0);
  await removeCgroups(cleanup.cgroupRoot);
  // Another node's kubelet still wants its settings: the last node out restores them.
  if (!(await otherNodeRuns())) {
    for (const [key, value] of Object.entries(cleanup.sysctls)) {
      await writeFile(join('/proc/sys', key), value).catch(() => undefined);
    }
    await rm(SYSCTL_RECORD, { force: true });
  }
}

/**
 * The kernel settings as they were before any playground node changed them. The first node
 * records them in /run (gone at reboot, removed by the last node's stop), so that a node
 * started meanwhile, or after one was killed, does not take a kubelet's values for the host's.
 */
const SYSCTL_RECORD = '/run/meshid-node-sysctls.json';

async function originalSysctls(): Promise<Record<string, string>> {
  // A record left by a node that was killed rather than stopped still holds the host's own
  // values, which its kubelet changed: it is the truth even when no node runs now.
  const recorded = await readFile(SYSCTL_RECORD, 'utf8').then((t) => JSON.parse(t) as Record<string, string>, () => undefined);
  if (recorded) return recorded;
  const values: Record<string, string> = {};
  for (const key of KUBELET_SYSCTLS) values[key] = (await readFile(join('/proc/sys', key), 'utf8')).trim();
  await writeFile(SYSCTL_RECORD, JSON.stringify(values));
  return values;
}

async function otherNodeRuns(): Promise<boolean> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  return /^\d+: meshid-node\d+[@:]/m.test(stdout);
}

async function ip(args: string[]): Promise<void> {
  await run('ip', args);
}

/** Takes the first free slot: creating the link is what claims it, so two `up`s cannot collide. */
async function linkToHost(pid: number): Promise<NodeNetwork> {
  for (let slot = 0; slot < NODE_SLOTS; slot++) {
    const n = nodeNetwork(slot);
    const made = await run('ip', ['link', 'add', n.hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]).then(() => true, () => false);
    if (made) return n;
  }
  throw new MeshidError('ERR_PLAYGROUND_RUNNING', `${NODE_SLOTS} playground nodes already run on this machine (links meshid-node0 to meshid-node${NODE_SLOTS - 1})`, {
    hint: 'Stop one with `meshid down --dir <its dir>`, or run this one with --no-node.',
  });
}

/** The holder is ready once its mounts are made and it has become the pause program. */
async function waitForExec(holder: PeerProcess, program: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const exe = await readlink(`/proc/${holder.pid}/exe`).catch(() => '');
    if (exe === program) return;
    if (!isAlive(holder.pid)) break;
    await sleep(50);
  }
  throw new Error('the namespace holder did not start (see node/logs/node-namespaces.log)');
}

async function comm(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
}

async function processesInNamespaces(namespaces: readonly string[]): Promise<number[]> {
  if (namespaces.length === 0) return [];
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    for (const kind of ['mnt', 'net']) {
      const ns = await readlink(`/proc/${pid}/ns/${kind}`).catch(() => undefined);
      if (ns !== undefined && namespaces.includes(ns)) {
        pids.push(pid);
        break;
      }
    }
  }
  return pids;
}

/** The cgroup v1 hierarchies (or the single v2 one) that hold the node's cgroup tree. */
async function cgroupTrees(cgroupRoot: string): Promise<string[]> {
  const base = '/sys/fs/cgroup';
  const unified = await readFile(join(base, 'cgroup.controllers'), 'utf8').then(() => true, () => false);
  if (unified) return [join(base, cgroupRoot)];
  const hierarchies = await readdir(base).catch(() => [] as string[]);
  return hierarchies.map((h) => join(base, h, cgroupRoot));
}

/**
 * The kubelet wants its cgroup root to exist in every hierarchy. A new cpuset starts with no
 * CPUs or memory nodes in cgroup v1, so it gets its parent's.
 */
async function createCgroups(cgroupRoot: string): Promise<void> {
  for (const tree of await cgroupTrees(cgroupRoot)) {
    await mkdir(tree, { recursive: true });
    if (tree.startsWith('/sys/fs/cgroup/cpuset/')) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        await writeFile(join(tree, file), await readFile(join(tree, '..', file), 'utf8'));
      }
    }
  }
}

async function cgroupProcesses(cgroupRoot: string): Promise<number[]> {
  const pids = new Set<number>();
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of procs.split('\n')) if (line.trim()) pids.add(Number(line));
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(dir, entry.name), depth + 1);
    }
  };
  for (const tree of await cgroupTrees(cgroupRoot)) await walk(tree, 0);
  return [...pids];
}

/** Children before parents; a cgroup that still has a process gets a few tries. */
async function removeCgroups(cgroupRoot: string): Promise<void> {
  const remove = async (dir: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await remove(join(dir, entry.name), depth + 1);
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      const error = await rmdir(dir).then(() => undefined, (e: NodeJS.ErrnoException) => e);
      if (!error || error.code === 'ENOENT') return;
      for (const pid of (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean)) kill(Number(pid));
      await sleep(100);
    }
  };
  for (const tree of await cgroupTrees(cgroupRoot)) await remove(tree, 0);
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
