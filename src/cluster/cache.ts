import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where built peers live: outside the repo, reused across runs, checkouts and sessions. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['MESHID_CACHE_DIR'];
  if (explicit) return explicit;
  const xdg = env['XDG_CACHE_HOME'];
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'meshid');
}
