import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MESHID_BIN = fileURLToPath(new URL('../../bin/meshid', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Standard input; none means end of file at once, as `< /dev/null` would give. */
  input?: string;
}

/** Runs the built CLI as a user would, bounded in time. */
export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return runProgram(process.execPath, [MESHID_BIN, ...args], options);
}

/** Runs any program (meshid, or a peer such as kumactl) to its end, bounded in time. */
export function runProgram(file: string, args: string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(options.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} timed out\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
