import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';
import type { GlobalOptions } from './globals.ts';
import type { HttpCall } from './http.ts';

/** Log in again this long before the ID token expires, so a command never starts with a dying token. */
const EXPIRY_MARGIN_MS = 60_000;

/** Whether a stored ID token can still carry a command, with the margin above. */
export function sessionIsFresh(session: { token?: string | undefined; expiresAt?: string | undefined }): boolean {
  return !!session.token && Date.parse(session.expiresAt ?? '') - EXPIRY_MARGIN_MS > Date.now();
}

/** A fresh ID token stored in a kubeconfig context, and where the server that issued it is. */
export interface StoredSession {
  context: string;
  base: URL;
  token: string;
  tls: NonNullable<HttpCall['tls']>;
}

const record = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

const named = (list: unknown, name: string): Record<string, unknown> | undefined =>
  Array.isArray(list) ? list.map(record).find((item) => item?.['name'] === name) : undefined;

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * The session a command can use as it is: a fresh ID token and a server URL (--url or the
 * context's), read from the kubeconfig with the YAML parser alone. The Kubernetes client, and
 * the credential it would resolve (possibly by running an exec plugin), are needed only to log
 * in, so a command like `whoami` starts without them. Anything this reading does not cover (a
 * $KUBECONFIG list to merge, a service-proxy connection, a stale token, a file kubectl would
 * refuse) answers undefined, and the caller takes the full path, with its checks and errors.
 */
export async function storedSession(globals: Pick<GlobalOptions, 'kubeconfig' | 'context'>, options: { url?: string | undefined; insecureSkipTlsVerify?: boolean | undefined }): Promise<StoredSession | undefined> {
  const file = globals.kubeconfig ?? singleKubeconfigFile();
  if (!file) return undefined;
  let config: Record<string, unknown> | undefined;
  try {
    config = record(parse(await readFile(file, 'utf8')));
  } catch {
    return undefined;
  }
  const contextName = globals.context ?? text(config?.['current-context']);
  if (!config || !contextName) return undefined;
  const context = record(named(config['contexts'], contextName)?.['context']);
  const cluster = text(context?.['cluster']);
  if (!context || !cluster || !named(config['clusters'], cluster)) return undefined;
  const extension = record(named(context['extensions'], 'meshid')?.['extension']);
  if (!extension) return undefined;
  const fields = ['server', 'certificate-authority-data', 'token', 'expiresAt'].map((key) => extension[key]);
  // A field of another type, or a server that is no URL, makes the extension invalid; the full path says so.
  if (fields.some((value) => value !== undefined && typeof value !== 'string')) return undefined;
  const [server, caData, token, expiresAt] = fields.map(text);
  if (server !== undefined && !URL.canParse(server)) return undefined;
  const address = options.url ?? server;
  if (!address || !URL.canParse(address) || !token || !sessionIsFresh({ token, expiresAt })) return undefined;
  return {
    context: contextName,
    base: new URL(address),
    token,
    tls: { ...(caData ? { ca: Buffer.from(caData, 'base64').toString('utf8') } : {}), ...(options.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}) },
  };
}

/** $KUBECONFIG naming one file, or ~/.kube/config without it; a list is merged by the full path. */
function singleKubeconfigFile(): string | undefined {
  const list = (process.env['KUBECONFIG'] ?? '').split(delimiter).filter(Boolean);
  if (list.length > 1) return undefined;
  return list[0] ?? join(homedir(), '.kube', 'config');
}
