import { request } from 'node:https';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

export interface RawResponse {
  status: number;
  body: unknown;
}

/** One HTTPS call with a kubeconfig's credentials and any extra headers (e.g. Impersonate-*). */
export async function kubeRequest(
  kubeconfig: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string | string[]>; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error(`no server in ${kubeconfig}`);
  const opts: Parameters<typeof request>[1] = { method, headers: { accept: 'application/json', ...options.headers } };
  await kc.applyToHTTPSOptions(opts);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload) opts.headers = { ...opts.headers, 'content-type': 'application/json' };
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, server), opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Deletes every ConfigMap called `name`, in every namespace: what a test's own CA published
 * its roots as (a CA publishes into all namespaces, as istiod does).
 */
export async function deleteConfigMapsNamed(admin: KubeConfig, name: string): Promise<void> {
  const api = admin.makeApiClient(CoreV1Api);
  const list = await api.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=${name}` });
  for (const cm of list.items) await api.deleteNamespacedConfigMap({ name, namespace: cm.metadata?.namespace ?? '' }).catch(() => undefined);
}
