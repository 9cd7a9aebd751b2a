import { readFile } from 'node:fs/promises';

/** User plus system CPU time of a process so far, in seconds, from /proc (clock ticks are 100 Hz on Linux). */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * User plus system CPU time, in seconds, of the children this process has waited for (cutime +
 * cstime in /proc/self/stat): what a load generator run with execFile cost, once it has exited.
 */
export async function childrenCpuSeconds(): Promise<number> {
  const fields = (await readFile('/proc/self/stat', 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS is in kB there). */
export async function vmRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`/proc/${pid}/status has no VmRSS (a zombie?)`);
  return Number(kb) * 1024;
}

export interface RssSample {
  /** Milliseconds since the sampling started. */
  at: number;
  /** Bytes, by the name given to each pid. */
  rss: Record<string, number>;
}

/**
 * Samples the RSS of each named process every `everyMs` until `untilMs` from now (bounded in
 * count too), so that a start and an end can be read off after a run.
 */
export async function sampleRss(pids: Record<string, number>, everyMs: number, untilMs: number): Promise<RssSample[]> {
  const samples: RssSample[] = [];
  const t0 = performance.now();
  const limit = Math.ceil(untilMs / everyMs) + 1;
  while (performance.now() - t0 <= untilMs && samples.length < limit) {
    const at = performance.now() - t0;
    const rss: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) rss[name] = await vmRss(pid);
    samples.push({ at, rss });
    await new Promise((r) => setTimeout(r, Math.max(0, at + everyMs - (performance.now() - t0))));
  }
  return samples;
}

/** The median of the named process's samples taken in [fromMs, toMs]. */
export function medianRss(samples: RssSample[], name: string, fromMs: number, toMs: number): number {
  const values = samples.filter((s) => s.at >= fromMs && s.at <= toMs).map((s) => s.rss[name] ?? NaN).sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] ?? NaN;
}
