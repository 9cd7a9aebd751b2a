import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, spawnPeer, stopPid, type PeerProcess } from '../../src/cluster/index.ts';
import { MESHID_BIN } from './cli.ts';

/**
 * `bin/meshid …` as a child process of the test, its stdout and stderr in a log file the
 * test can read (and scan), killed by the kernel if the test process dies first.
 */
export interface MeshidProcess {
  name: string;
  logFile: string;
  /** The current process; `restart` replaces it. */
  peer: PeerProcess;
  logs(): Promise<string>;
  /** SIGKILL, as a crash or an OOM kill would; resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGKILL if still running, then the same command again, appending to the same log. */
  restart(): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

export interface SpawnMeshidOptions {
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves once the process serves; it is retried until then, for at most `readyMs`. */
  ready: () => Promise<boolean>;
  readyMs?: number;
}

/** Starts `meshid <args>` and waits until `ready` holds; fails with the log's tail if the process exits first. */
export async function spawnMeshid(name: string, args: string[], options: SpawnMeshidOptions): Promise<MeshidProcess> {
  const logFile = join(options.logDir, `${name}.log`);
  const start = async (): Promise<PeerProcess> => {
    const peer = spawnPeer(name, process.execPath, [MESHID_BIN, ...args], { logFile, detached: false, ...(options.env ? { env: options.env } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) });
    let exited: string | undefined;
    void peer.exited.then((how) => (exited = how));
    const deadline = Date.now() + (options.readyMs ?? 60_000);
    while (Date.now() < deadline) {
      if (exited !== undefined) throw new Error(`${name} exited (${exited}) while starting:\n${tail(await readFile(logFile, 'utf8').catch(() => ''))}`);
      if (await options.ready().catch(() => false)) return peer;
      await new Promise((r) => setTimeout(r, 100));
    }
    peer.child.kill('SIGKILL');
    throw new Error(`${name} was not ready within ${(options.readyMs ?? 60_000) / 1000} s:\n${tail(await readFile(logFile, 'utf8').catch(() => ''))}`);
  };
  const handle: MeshidProcess = {
    name,
    logFile,
    peer: await start(),
    logs: () => readFile(logFile, 'utf8'),
    async kill() {
      handle.peer.child.kill('SIGKILL');
      await handle.peer.exited;
    },
    async restart() {
      await handle.kill();
      handle.peer = await start();
    },
    stop: () => stopPid(handle.peer.pid, 5_000),
  };
  return handle;
}

function tail(log: string): string {
  return log.split('\n').slice(-20).join('\n');
}

/** HTTP status of GET `url`, or 0 when nothing answers within a second. */
async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

export interface ServerProcess extends MeshidProcess {
  http: string;
  https: string;
  /** 127.0.0.1:port of the workload CA, when `ca` was asked for. */
  caAddress?: string;
}

export interface ServerProcessOptions {
  name: string;
  namespace: string;
  /** Credentials of the server: a kubeconfig of the installation's ServiceAccount. */
  kubeconfig: string;
  logDir: string;
  /** Runs the workload CA too, publishing its roots in ConfigMaps of this name, signing on that many threads (unset: the default). */
  ca?: { rootConfigMap: string; signingThreads?: number };
  readyMs?: number;
}

/** `meshid server` on free loopback ports, ready once its /readyz answers 200. */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const [httpPort, httpsPort, caPort] = [await freePort(), await freePort(), await freePort()];
  const args = ['server', '--kubeconfig', options.kubeconfig, '-n', options.namespace, '--host', '127.0.0.1', '--http-port', String(httpPort), '--https-port', String(httpsPort)];
  if (options.ca) {
    // Settings without a flag go through --config (YAML, of which JSON is a part).
    const config = join(options.logDir, `${options.name}.config.json`);
    await writeFile(config, JSON.stringify({ ca: options.ca }));
    args.push('--ca', '--ca-port', String(caPort), '--config', config);
  }
  const http = `http://127.0.0.1:${httpPort}`;
  const running = await spawnMeshid(options.name, args, { logDir: options.logDir, ready: async () => (await httpStatus(`${http}/readyz`)) === 200, ...(options.readyMs ? { readyMs: options.readyMs } : {}) });
  return Object.assign(running, { http, https: `https://127.0.0.1:${httpsPort}`, ...(options.ca ? { caAddress: `127.0.0.1:${caPort}` } : {}) });
}

export interface AgentProcessOptions {
  name: string;
  namespace: string;
  /** Credentials of the agent: a kubeconfig of the installation's agent ServiceAccount. */
  kubeconfig: string;
  socket: string;
  caAddress: string;
  /** The name on the CA's certificate, when `caAddress` is an address it does not carry. */
  caServerName?: string | undefined;
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** `meshid agent`, ready once its Unix socket takes connections (a killed agent's socket file does not). */
export function startAgentProcess(options: AgentProcessOptions): Promise<MeshidProcess> {
  const args = ['agent', '--kubeconfig', options.kubeconfig, '-n', options.namespace, '--socket', options.socket, '--ca-address', options.caAddress, ...(options.caServerName ? ['--ca-server-name', options.caServerName] : [])];
  return spawnMeshid(options.name, args, {
    logDir: options.logDir,
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ready: () => socketAccepts(options.socket),
  });
}

function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
