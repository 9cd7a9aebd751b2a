import { readFile } from 'node:fs/promises';
import { MeshidError } from '../core/index.ts';

/** A file named by a flag; a missing or unreadable one is an error naming the flag. */
export async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}

/** A Go-style duration flag (`30s`, `1h`), as kubectl and kumactl take them. */
export async function durationFlag(flag: string, text: string): Promise<number> {
  // The parser lives with the user tokens; load it only when a command needs it.
  const { parseDuration } = await import('../tokens/index.ts');
  try {
    return parseDuration(text);
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${flag}: ${(error as Error).message}`, { cause: error });
  }
}

/** A duration as a flag takes it, in its largest whole unit (`30s`, `1h`): defaults shown in help. */
export function durationText(ms: number): string {
  const units: [string, number][] = [['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  const [unit, size] = units.find(([, n]) => ms >= n && ms % n === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}
