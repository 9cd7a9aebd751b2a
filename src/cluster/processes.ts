import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshidError } from '../core/index.ts';

export interface PeerProcess {
  name: string;
  pid: number;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<string>;
  child: ChildProcess;
}

export interface SpawnPeerOptions {
  logFile: string;
  /** Detached peers outlive this process (`meshid up --detach`); attached ones die with it. */
  detached: boolean;
  /** The environment; this process's own when absent. */
  env?: NodeJS.ProcessEnv;
  /** The working directory; this process's own when absent. */
  cwd?: string;
  /** A playground's pid record ({@link pidRecord}): the peer is written there as it starts. */
  record?: string;
}

/**
 * `<dir>/pids`: one line per peer a playground started, written as each starts, so that
 * `meshid down` finds them all even when `up` was interrupted before it wrote env.json.
 */
export function pidRecord(dir: string): string {
  return join(dir, 'pids');
}

export interface RecordedPeer {
  pid: number;
  name: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  start: string;
}

/** A pid's start time, which tells a peer from a later process that reused its pid. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces, start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The peers in a pid record that still run as the very processes recorded. */
export function recordedPeers(file: string): RecordedPeer[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as RecordedPeer)
    .filter((peer) => processStart(peer.pid) === peer.start);
}

const HAS_SETPRIV = spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * Starts a peer with its output in a log file. An attached peer is started through
 * `setpriv --pdeathsig KILL`, so the kernel kills it even when this process is SIGKILLed:
 * no apiserver or etcd outlives a test run.
 */
export function spawnPeer(name: string, binary: string, args: string[], options: SpawnPeerOptions): PeerProcess {
  const log = openSync(options.logFile, 'a');
  const [command, argv] =
    !options.detached && HAS_SETPRIV ? ['setpriv', ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
  const child = spawn(command, argv, { stdio: ['ignore', log, log], detached: options.detached, ...(options.env ? { env: options.env } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) });
  closeSync(log);
  if (options.detached) child.unref();
  const exited = new Promise<string>((resolve) => {
    child.on('exit', (code, signal) => resolve(signal ?? String(code)));
    child.on('error', (error) => resolve(`spawn error: ${error.message}`));
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${binary})`);
  if (options.record) {
    const entry: RecordedPeer = { pid: child.pid, name, start: processStart(child.pid) ?? '' };
    appendFileSync(options.record, JSON.stringify(entry) + '\n', { mode: 0o600 });
  }
  return { name, pid: child.pid, exited, child };
}

/**
 * Whether the process still runs. A zombie does not: it has exited and only waits for its
 * parent to reap it, which for a detached peer whose `up` has gone may be never.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return processState(pid) !== 'Z';
}

/** The one-letter state of /proc/<pid>/stat (R, S, D, Z, …), or undefined off Linux. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/**
 * SIGTERM, then SIGKILL after the grace period. Works for peers of another process too
 * (`meshid down` after `up --detach`), so it polls the pid rather than awaiting an event.
 */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!signal(pid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(50);
  }
  signal(pid, 'SIGKILL');
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(20);
}

function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/** A free loopback port. The tiny window before the peer binds it is acceptable on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Polls `check` until it holds, while `peer` runs: a peer that exits fails at once, with its
 * log named (`logDir` is where the playground keeps it, relative to its directory).
 */
export async function waitForPeer(check: () => Promise<boolean>, peer: PeerProcess, what: string, options: { logDir: string; timeoutMs?: number; intervalMs?: number }): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const hint = `See ${options.logDir}/${peer.name}.log in the playground directory.`;
  let exited: string | undefined;
  void peer.exited.then((how) => (exited = how));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new MeshidError('ERR_CLUSTER_START_FAILED', `${peer.name} exited (${exited}) while starting`, { hint });
    if (await check()) return;
    await sleep(options.intervalMs ?? 200);
  }
  throw new MeshidError('ERR_CLUSTER_NOT_READY', `${what} was not ready after ${timeoutMs / 1000} s`, { hint });
}
