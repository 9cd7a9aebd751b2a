import { Agent } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** How the server reaches kube-apiserver as itself: a keep-alive TLS agent and its credential. */
export interface Upstream {
  url: URL;
  agent: Agent;
  /** The server's own Authorization header, if its credential is a token. */
  authorization(): string | undefined;
  close(): void;
}

/** Projected service-account tokens rotate on disk; re-read the credential this often. */
const REFRESH_MS = 60_000;

export async function kubeUpstream(kc: KubeConfig): Promise<Upstream> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('kubeconfig has no server');
  const read = async (): Promise<{ ca?: unknown; cert?: unknown; key?: unknown; auth?: string }> => {
    const opts: { headers?: Record<string, string>; ca?: unknown; cert?: unknown; key?: unknown } = { headers: {} };
    await kc.applyToHTTPSOptions(opts as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
    const auth = opts.headers?.['Authorization'] ?? opts.headers?.['authorization'];
    return { ca: opts.ca, cert: opts.cert, key: opts.key, ...(auth ? { auth } : {}) };
  };
  const first = await read();
  let authorization = first.auth;
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 256,
    ...(first.ca ? { ca: first.ca as string } : {}),
    ...(first.cert ? { cert: first.cert as string } : {}),
    ...(first.key ? { key: first.key as string } : {}),
  });
  const timer = setInterval(() => {
    void read().then(
      (next) => (authorization = next.auth),
      () => undefined,
    );
  }, REFRESH_MS);
  timer.unref();
  return {
    url: new URL(server),
    agent,
    authorization: () => authorization,
    close() {
      clearInterval(timer);
      agent.destroy();
    },
  };
}
