import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

/**
 * Writes a one-context kubeconfig (cluster `c` at an address nothing listens on, user `u`,
 * context `ctx`), with meshid's context extension when given: what the CLI's session code reads.
 */
export async function writeKubeconfig(file: string, options: { user: Record<string, unknown>; extension?: Record<string, unknown> | undefined; cluster?: string }): Promise<string> {
  const context = { cluster: options.cluster ?? 'c', user: 'u', ...(options.extension ? { extensions: [{ name: 'meshid', extension: options.extension }] } : {}) };
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'u', user: options.user }],
      contexts: [{ name: 'ctx', context }],
      'current-context': 'ctx',
    }),
  );
  return file;
}
