import { stringify } from 'yaml';
import { MeshidError } from '../core/index.ts';

export type OutputFormat = 'text' | 'json' | 'yaml';

export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === '' || value === 'text' || value === 'wide') return 'text';
  if (value === 'json' || value === 'yaml') return value;
  throw new MeshidError('ERR_INVALID_ARGUMENT', `unknown output format "${value}"`, { hint: 'Use -o json or -o yaml.' });
}

/** Machine-readable output goes to stdout and nothing else does, as with kubectl -o. */
export function printStructured(value: unknown, format: Exclude<OutputFormat, 'text'>): void {
  process.stdout.write(format === 'json' ? JSON.stringify(value, null, 2) + '\n' : stringify(value));
}
