import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

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
  return { name, pid: child.pid, exited, child };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
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
