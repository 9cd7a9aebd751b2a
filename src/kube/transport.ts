import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** The TLS side of a kubeconfig's current context, as Node's https options take it. */
export interface KubeTls {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Only ever false: `insecure-skip-tls-verify: true`. */
  rejectUnauthorized?: false;
  /** `tls-server-name`. */
  servername?: string;
}

/** How to reach the apiserver of a kubeconfig's current context, as kubectl would. */
export interface KubeTransport {
  /** Undefined when the context names none (a caller that goes elsewhere may not need it). */
  server: URL | undefined;
  tls: KubeTls;
  /** The Authorization header of a token credential (token, token file, exec plugin, auth-provider). */
  authorization: string | undefined;
  /**
   * Equal for equal TLS material: an agent made for one transport serves another with the same
   * fingerprint, and a changed one (a client certificate an exec plugin rotated) needs a new agent.
   */
  fingerprint: string;
}

/**
 * Reads the current context's server, TLS material and credential. It runs exec plugins and
 * auth-providers (client-node caches what they return until it expires), so call it per use
 * where credentials rotate rather than once.
 */
export async function kubeTransport(kc: KubeConfig): Promise<KubeTransport> {
  const server = kc.getCurrentCluster()?.server;
  const opts: { headers: Record<string, string>; ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string } = { headers: {} };
  await kc.applyToHTTPSOptions(opts as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
  const tls: KubeTls = {
    ...(opts.ca ? { ca: opts.ca } : {}),
    ...(opts.cert ? { cert: opts.cert } : {}),
    ...(opts.key ? { key: opts.key } : {}),
    ...(opts.rejectUnauthorized === false ? { rejectUnauthorized: false as const } : {}),
    ...(opts.servername ? { servername: opts.servername } : {}),
  };
  return {
    server: server ? new URL(server) : undefined,
    tls,
    authorization: opts.headers['Authorization'] ?? opts.headers['authorization'],
    fingerprint: [tls.ca, tls.cert, tls.key, tls.rejectUnauthorized, tls.servername].map((v) => String(v)).join('\0'),
  };
}

/** The one place a kubeconfig's TLS material becomes a connection pool to the apiserver. */
export function kubeTlsAgent(tls: KubeTls, options: AgentOptions = {}): HttpsAgent {
  return new HttpsAgent({ keepAlive: true, ...options, ...tls });
}
