import { createPrivateKey, sign } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { PROOF_CONTEXT } from '../authn/index.ts';
import { FORWARDED_AUTH_HEADER } from '../server/index.ts';
import { HTTPS_PORT, SERVICE_NAME } from '../install/index.ts';
import { call, type HttpAnswer, type HttpCall } from './http.ts';
import { kubeTransport, kubeconfigFile, loadKubeConfig, readExtension, type MeshidExtension } from '../kube/index.ts';
import type { GlobalOptions } from './globals.ts';

/** The user's kube credential as kubectl resolved it: the shapes client-go knows. */
export type KubeCredential = { type: 'bearer'; token: string } | { type: 'certificate'; certPem: string; keyPem: string } | { type: 'none' };

/** How the CLI reaches meshid: straight at a URL, or through the apiserver's service proxy. */
export interface Connection {
  kc: KubeConfig;
  file: string;
  context: string;
  extension: MeshidExtension;
  mode: 'url' | 'service-proxy';
  base: URL;
  credential: KubeCredential;
  /** Sends a request to meshid; `sessionToken` is meshid's ID token when there is one. */
  send(method: string, path: string, options?: { body?: unknown; sessionToken?: string; kubeBearer?: boolean }): Promise<HttpAnswer>;
}

export interface ConnectOptions {
  url?: string | undefined;
  insecureSkipTlsVerify?: boolean | undefined;
  /** Go through the apiserver's service proxy even when the context remembers a server. */
  serviceProxy?: boolean | undefined;
}

export async function connect(globals: GlobalOptions, options: ConnectOptions = {}): Promise<Connection> {
  const kc = loadKubeConfig({ kubeconfig: globals.kubeconfig, context: globals.context });
  const context = kc.getCurrentContext();
  const file = kubeconfigFile({ kubeconfig: globals.kubeconfig }, context);
  const extension = await readExtension(file, context);
  // Runs exec plugins and auth-providers exactly as kubectl would.
  const transport = await kubeTransport(kc);
  const auth = transport.authorization;
  const credential: KubeCredential = auth?.startsWith('Bearer ')
    ? { type: 'bearer', token: auth.slice('Bearer '.length) }
    : transport.tls.cert && transport.tls.key
      ? { type: 'certificate', certPem: pemText(transport.tls.cert), keyPem: pemText(transport.tls.key) }
      : { type: 'none' };

  const direct = options.url ?? (options.serviceProxy ? undefined : extension.server);
  if (direct) {
    const base = new URL(direct);
    const ca = extension['certificate-authority-data'] ? Buffer.from(extension['certificate-authority-data'], 'base64').toString('utf8') : undefined;
    const tls: HttpCall['tls'] = { ...(ca ? { ca } : {}), ...(options.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}) };
    return {
      kc, file, context, extension, mode: 'url', base, credential,
      send: (method, path, o = {}) => {
        const headers: Record<string, string> = {};
        if (o.sessionToken) headers['authorization'] = `Bearer ${o.sessionToken}`;
        else if (o.kubeBearer && credential.type === 'bearer') headers['authorization'] = `Bearer ${credential.token}`;
        return call({ method, url: new URL(path, base), headers, body: o.body, tls });
      },
    };
  }

  // The apiserver's service proxy: no load balancer, DNS or certificate needed. It strips
  // Authorization after using it, so meshid's own token travels in X-Authorization.
  const server = transport.server;
  if (!server) throw new MeshidError('ERR_KUBECONFIG', 'the kubeconfig has no server');
  const base = new URL(`${server.href.replace(/\/$/, '')}/api/v1/namespaces/${globals.namespace}/services/https:${SERVICE_NAME}:${HTTPS_PORT}/proxy/`);
  const tls: HttpCall['tls'] = transport.tls;
  return {
    kc, file, context, extension, mode: 'service-proxy', base, credential,
    send: (method, path, o = {}) => {
      const headers: Record<string, string> = {};
      if (auth) headers['authorization'] = auth;
      if (o.sessionToken) headers[FORWARDED_AUTH_HEADER] = `Bearer ${o.sessionToken}`;
      else if (o.kubeBearer && credential.type === 'bearer') headers[FORWARDED_AUTH_HEADER] = `Bearer ${credential.token}`;
      return call({ method, url: new URL(path.replace(/^\//, ''), base), headers, body: o.body, tls });
    },
  };
}

/** Signs the server's challenge with the kubeconfig's key; the key itself is never sent. */
export function proveCertificate(credential: Extract<KubeCredential, { type: 'certificate' }>, challenge: string): { certificate: string; challenge: string; signature: string } {
  const key = createPrivateKey(credential.keyPem);
  const signature = sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', Buffer.from(PROOF_CONTEXT + challenge), key);
  return { certificate: credential.certPem, challenge, signature: signature.toString('base64') };
}

/** client-node hands TLS material over as a string or a Buffer. */
function pemText(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : typeof value === 'string' ? value : '';
}
