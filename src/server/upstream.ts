import type { Agent } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeTlsAgent, kubeTransport, type KubeTls } from '../kube/index.ts';

/** How the server reaches kube-apiserver as itself: a keep-alive TLS agent and its credential. */
export interface Upstream {
  url: URL;
  agent: Agent;
  /** The agent's TLS material, for connections that must not come from its pool (upgrades). */
  tls: KubeTls;
  /** The server's own Authorization header, if its credential is a token. */
  authorization(): string | undefined;
  close(): void;
}

/** Projected service-account tokens rotate on disk; re-read the credential this often. */
const REFRESH_MS = 60_000;

export async function kubeUpstream(kc: KubeConfig): Promise<Upstream> {
  const first = await kubeTransport(kc);
  if (!first.server) throw new Error('kubeconfig has no server');
  let authorization = first.authorization;
  const agent = kubeTlsAgent(first.tls, { maxSockets: 256 });
  const timer = setInterval(() => {
    void kubeTransport(kc).then(
      (next) => (authorization = next.authorization),
      () => undefined,
    );
  }, REFRESH_MS);
  timer.unref();
  return {
    url: first.server,
    agent,
    tls: first.tls,
    authorization: () => authorization,
    close() {
      clearInterval(timer);
      agent.destroy();
    },
  };
}
