import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

/**
 * A kubeconfig that authenticates as a service account with a TokenRequest token: exactly
 * the identity a pod of that account gets in-cluster, for processes run outside the cluster.
 */
export async function serviceAccountKubeconfig(kc: KubeConfig, namespace: string, name: string, expirationSeconds: number): Promise<string> {
  const api = kc.makeApiClient(CoreV1Api);
  const answer = await api.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds } },
  });
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const caData = cluster.caData;
  const user = `system:serviceaccount:${namespace}:${name}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster.name, cluster: { server: cluster.server, ...(caData ? { 'certificate-authority-data': caData } : {}), ...(cluster.caFile ? { 'certificate-authority': cluster.caFile } : {}) } }],
    users: [{ name: user, user: { token: answer.status?.token } }],
    contexts: [{ name: user, context: { cluster: cluster.name, user, namespace } }],
    'current-context': user,
  });
}
