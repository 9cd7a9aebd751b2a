import { chmod, lstat, mkdir, stat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, isAbsolute } from 'node:path';
import { MeshidError, type Logger } from '../core/index.ts';

// sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;
const PROBE_TIMEOUT_MS = 1_000;

/** Accepts `/path` or `unix:///path` and answers the filesystem path. */
export function socketFilePath(pathOrUrl: string): string {
  const path = pathOrUrl.startsWith('unix://') ? pathOrUrl.slice('unix://'.length) : pathOrUrl.startsWith('unix:') ? pathOrUrl.slice('unix:'.length) : pathOrUrl;
  if (!isAbsolute(path)) throw new MeshidError('ERR_INVALID_ARGUMENT', `socketPath: "${pathOrUrl}" is not an absolute path`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `socketPath: "${path}" is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have`);
  }
  return path;
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether something accepts connections on the socket now. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    const done = (result: boolean | Error): void => {
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(true)); // accepted but silent: alive
    socket.once('connect', () => done(true));
    socket.once('error', (error) => (errno(error) === 'ECONNREFUSED' || errno(error) === 'ENOENT' ? done(false) : done(error)));
  });
}

/**
 * Makes the socket's directory (mode `dirMode` when this creates it; an existing directory is
 * the operator's) and clears a socket file an earlier agent left behind. A socket something
 * still listens on is another agent's: starting would steal its clients, so this refuses.
 */
export async function prepareSocketPath(path: string, dirMode: number, log: Logger): Promise<void> {
  const dir = dirname(path);
  const existing = await stat(dir).catch((error: unknown) => {
    if (errno(error) === 'ENOENT') return undefined;
    throw error;
  });
  if (!existing) {
    await mkdir(dir, { recursive: true, mode: dirMode });
    // mkdir's mode passes through the umask; the socket's protection is this directory's mode.
    await chmod(dir, dirMode);
  } else if (!existing.isDirectory()) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `socketPath: ${dir} is not a directory`);
  }
  const file = await lstat(path).catch((error: unknown) => {
    if (errno(error) === 'ENOENT') return undefined;
    throw error;
  });
  if (!file) return;
  if (!file.isSocket()) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `socketPath: ${path} exists and is not a socket; not removing it`, { hint: 'Choose another path or remove the file yourself.' });
  }
  if (await listening(path)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `socketPath: another process is serving on ${path}`, {
      hint: 'Another meshid agent (or Istio agent) is running on this node; stop it first or choose another socket path.',
    });
  }
  await unlink(path);
  log.info({ path }, 'removed a stale SDS socket');
}

/**
 * Removes the socket this process bound (`ino`), and nothing else: not a socket another agent
 * has put there since, and nothing at all when this process never bound (a refused start).
 */
export async function removeSocket(path: string, ino: number | undefined): Promise<void> {
  if (ino === undefined) return;
  const file = await lstat(path).catch(() => undefined);
  if (file?.isSocket() && file.ino === ino) await unlink(path).catch(() => undefined);
}
