import type { Command } from 'commander';
import { globalOptions } from './globals.ts';
import { call, type HttpAnswer, type HttpCall } from './http.ts';
import { storedSession } from './stored-session.ts';

/** A way to call meshid's API: a control plane's user token, or a kubeconfig session. */
export interface ApiClient {
  /** What the calls go to, for messages. */
  describe: string;
  send(method: string, path: string, body?: unknown): Promise<HttpAnswer>;
}

export interface ApiClientFlags {
  url?: string | undefined;
  insecureSkipTlsVerify?: boolean | undefined;
}

/**
 * As kumactl: the current control plane (`meshid config control-planes use`) carries the
 * calls with its user token. --kubeconfig, --context or --url mean the user asked for the
 * kubeconfig path, so those win; with no current control plane the kubeconfig is used too.
 */
export async function openApiClient(command: Command, flags: ApiClientFlags = {}): Promise<ApiClient> {
  const globals = globalOptions(command);
  if (globals.kubeconfig === undefined && globals.context === undefined && flags.url === undefined) {
    const { currentControlPlane } = await import('./control-planes.ts');
    const controlPlane = await currentControlPlane();
    if (controlPlane) {
      const tls: HttpCall['tls'] = {
        ...(controlPlane.caCertData ? { ca: controlPlane.caCertData } : {}),
        ...(controlPlane.skipVerify ? { rejectUnauthorized: false } : {}),
        ...(controlPlane.clientCertData && controlPlane.clientKeyData ? { cert: controlPlane.clientCertData, key: controlPlane.clientKeyData } : {}),
      };
      const headers = { authorization: `Bearer ${controlPlane.authConf.token}` };
      return {
        describe: `control plane "${controlPlane.name}" (${controlPlane.address})`,
        send: (method, path, body) => call({ method, url: new URL(path, controlPlane.address), headers, body, tls }),
      };
    }
  }
  const viaKubeconfig = async (): Promise<ApiClient> => {
    const { connect } = await import('./connect.ts');
    const { sendWithSession } = await import('./session.ts');
    const conn = await connect(globals, { url: flags.url, insecureSkipTlsVerify: flags.insecureSkipTlsVerify });
    return { describe: `context "${conn.context}"`, send: (method, path, body) => sendWithSession(conn, method, path, body) };
  };
  // A fresh stored session needs neither the Kubernetes client nor the user's credential.
  const session = await storedSession(globals, flags);
  if (!session) return viaKubeconfig();
  return {
    describe: `context "${session.context}"`,
    send: async (method, path, body) => {
      const answer = await call({ method, url: new URL(path, session.base), headers: { authorization: `Bearer ${session.token}` }, body, tls: session.tls });
      // Refused (a rotated key, an ended session): the full path logs in again and retries, as it would have.
      return answer.status === 401 ? (await viaKubeconfig()).send(method, path, body) : answer;
    },
  };
}
