import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MeshidError, silentProgress, type Progress } from '../core/index.ts';
import { isAlive, pidRecord, recordedPeers, startCluster, stopPid, type LocalCluster, type PeerProcess } from '../cluster/index.ts';
import { startPlaygroundServer, type PlaygroundServer } from './meshid-server.ts';
import { startPlaygroundMesh, type PlaygroundMesh } from './mesh.ts';
import { NodeCleanupSchema, envFile, readEnv, writeEnv, type PlaygroundEnv } from './env.ts';
import { nodeUnsupported, stopNode, type NodeCleanup } from './node-namespace.ts';
import { startNodePlayground } from './node-playground.ts';

export const DEFAULT_PLAYGROUND_DIR = '.meshid';

export interface PlaygroundOptions {
  dir?: string;
  detach?: boolean;
  progress?: Progress;
  /** Run meshid with login turned off. */
  anonymousAuth?: boolean;
  /**
   * Run a real node and meshid as pods on it. Default: when this machine can (root on Linux);
   * otherwise meshid runs as host processes, and `up` says why.
   */
  node?: boolean;
}

export interface Playground {
  dir: string;
  env: PlaygroundEnv;
  cluster: LocalCluster;
  /** Every process of the playground: the cluster's and meshid's. */
  processes: PeerProcess[];
  stop(): Promise<void>;
}

/** `meshid up`: a real local cluster with meshid installed in it and its server running. */
export async function startPlayground(options: PlaygroundOptions = {}): Promise<Playground> {
  const dir = resolve(options.dir ?? DEFAULT_PLAYGROUND_DIR);
  const previous = await readEnv(dir).catch(() => undefined);
  if ((previous && previous.pids.some(isAlive)) || recordedPeers(pidRecord(dir)).length > 0) {
    throw new MeshidError('ERR_PLAYGROUND_RUNNING', `a playground is already running in ${dir}`, {
      hint: `Stop it with \`meshid down --dir ${dir}\`, or pick another --dir.`,
    });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await rm(envFile(dir), { force: true });
  await rm(pidRecord(dir), { force: true });
  const progress = options.progress ?? silentProgress;
  const detached = options.detach ?? false;
  const unable = nodeUnsupported();
  if (options.node === true && unable) {
    throw new MeshidError('ERR_NODE_UNSUPPORTED', `this machine cannot run the playground node: ${unable}`, { hint: 'Run `meshid up --no-node` to run meshid as host processes instead.' });
  }
  if (options.node !== false && !unable) return startWithNode(dir, progress, detached, options.anonymousAuth ?? false);
  if (options.node === undefined && unable) progress.fail(`No node: ${unable}; meshid runs as host processes instead.`);
  const cluster = await startCluster({ dir, detached, progress });
  let server: PlaygroundServer;
  try {
    server = await startPlaygroundServer(cluster, progress, detached, options.anonymousAuth ?? false);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  let mesh: PlaygroundMesh;
  try {
    mesh = await startPlaygroundMesh(cluster, server.workloadCa.address, progress, detached);
  } catch (error) {
    await stopPid(server.process.pid);
    await cluster.stop();
    throw error;
  }
  const processes = [...cluster.processes, server.process, ...mesh.processes];
  const env: PlaygroundEnv = {
    apiServer: cluster.apiServer,
    kubeconfigs: cluster.kubeconfigs,
    kubectl: cluster.kubectl,
    server: { http: server.http, https: server.https },
    ca: server.workloadCa,
    agent: mesh.agent,
    demo: mesh.demo,
    pids: processes.map((p) => p.pid),
  };
  await writeEnv(dir, env);
  const stop = async (): Promise<void> => {
    for (const p of [...mesh.processes].reverse()) await stopPid(p.pid);
    await stopPid(server.process.pid);
    await cluster.stop();
    await rm(envFile(dir), { force: true });
    await rm(pidRecord(dir), { force: true });
  };
  return { dir, env, cluster, processes, stop };
}

async function startWithNode(dir: string, progress: Progress, detached: boolean, anonymousAuth: boolean): Promise<Playground> {
  const started = await startNodePlayground(dir, progress, detached, anonymousAuth);
  const { cluster } = started;
  const env: PlaygroundEnv = {
    apiServer: cluster.apiServer,
    kubeconfigs: cluster.kubeconfigs,
    kubectl: cluster.kubectl,
    server: started.server,
    ca: started.ca,
    agent: started.agent,
    demo: {},
    pids: started.processes.map((p) => p.pid),
    node: { ...started.node, cleanup: started.cleanup },
  };
  await writeEnv(dir, env);
  const stop = async (): Promise<void> => {
    await started.stop();
    await rm(envFile(dir), { force: true });
    await rm(pidRecord(dir), { force: true });
  };
  return { dir, env, cluster, processes: started.processes, stop };
}

/** `meshid down`: stops what env.json lists, even when another process started it. */
export async function stopPlayground(dirOption: string = DEFAULT_PLAYGROUND_DIR, progress: Progress = silentProgress): Promise<void> {
  const dir = resolve(dirOption);
  const env = await readEnv(dir);
  // An `up` interrupted before env.json still left its pid record and the node's cleanup file.
  const recorded = recordedPeers(pidRecord(dir));
  const node = env?.node?.cleanup ?? (await readNodeCleanup(dir));
  if (!env && recorded.length === 0 && !node) {
    throw new MeshidError('ERR_PLAYGROUND_NOT_FOUND', `no playground in ${dir} (no env.json and no running process recorded there)`, {
      hint: 'Pass the --dir that `meshid up` used.',
    });
  }
  // The record names each process with its start time, so a pid reused since is left alone;
  // env.json's list is the fallback for a playground started before records existed.
  const pids = recorded.length > 0 ? recorded.map((p) => p.pid) : (env?.pids ?? []);
  progress.start(`Stopping ${pids.length} processes${node ? ' and the node' : ''}`);
  // The node first: its pods and daemons are not in the list, and the link goes with it.
  if (node) await stopNode(node);
  // Reverse start order, as the cluster's own stop does.
  for (const pid of [...pids].reverse()) await stopPid(pid);
  await rm(envFile(dir), { force: true });
  await rm(pidRecord(dir), { force: true });
  progress.succeed(`Stopped the playground in ${dir}`);
}

async function readNodeCleanup(dir: string): Promise<NodeCleanup | undefined> {
  const text = await readFile(join(dir, 'node', 'cleanup.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = NodeCleanupSchema.safeParse(JSON.parse(text));
  // A node that is gone (its namespaces with it) needs nothing more.
  return parsed.success && isAlive(parsed.data.holderPid) ? parsed.data : undefined;
}
