import { readFile } from 'node:fs/promises';
import { MeshidError, systemClock, type Clock } from '../core/index.ts';

const API_VERSION = 'client.authentication.k8s.io/v1';
/** Short-lived, like the tokens EKS and GKE plugins hand out, so clients must re-run us. */
const TOKEN_TTL_MS = 15 * 60 * 1000;

/**
 * A client-go credential plugin (the ExecCredential protocol). The playground's user carol
 * authenticates through it, so meshid is tested against the same path as cloud kubeconfigs.
 */
export async function execCredential(tokenFile: string, env: NodeJS.ProcessEnv = process.env, clock: Clock = systemClock): Promise<string> {
  const info = env['KUBERNETES_EXEC_INFO'];
  if (info) {
    let apiVersion: unknown;
    try {
      apiVersion = (JSON.parse(info) as { apiVersion?: unknown }).apiVersion;
    } catch (error) {
      throw new MeshidError('ERR_INVALID_ARGUMENT', 'KUBERNETES_EXEC_INFO is not JSON', { cause: error });
    }
    if (apiVersion !== API_VERSION) {
      throw new MeshidError('ERR_INVALID_ARGUMENT', `unsupported ExecCredential apiVersion ${String(apiVersion)}; this plugin speaks ${API_VERSION}`);
    }
  }
  const token = (await readFile(tokenFile, 'utf8')).trim();
  return JSON.stringify({
    apiVersion: API_VERSION,
    kind: 'ExecCredential',
    status: { token, expirationTimestamp: new Date(clock.now() + TOKEN_TTL_MS).toISOString() },
  });
}
