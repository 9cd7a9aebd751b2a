import type { KubernetesObject } from '@kubernetes/client-node';
import { AGENT_SOCKET_DIR, MESH_PROXY_GID } from '../install/index.ts';
import { CA_AUDIENCE } from '../kube/index.ts';
import { IMAGE_UID } from '../image/index.ts';

/** httpbin's mTLS port in a pod, and sleep's control port (loopback inside its pod). */
export const HTTPBIN_PORT = 8443;
export const SLEEP_CONTROL_PORT = 8080;
const TOKEN_DIR = '/var/run/secrets/tokens';
const TOKEN_SECONDS = 3600;

/**
 * Istio's sleep and httpbin as Deployments in one namespace. Each pod mounts the agent's
 * socket folder from the node and a projected token of its own service account for audience
 * istio-ca, as Istio's SDS example does; it holds nothing else. httpbin has a Service.
 */
export function demoManifests(namespace: string, image: string): KubernetesObject[] {
  const objects: KubernetesObject[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'meshid.io/mesh': 'enabled' } } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'httpbin', namespace, labels: { app: 'httpbin' } },
      spec: { selector: { app: 'httpbin' }, ports: [{ name: 'https', port: HTTPBIN_PORT, targetPort: HTTPBIN_PORT }] },
    } as KubernetesObject,
  ];
  for (const role of ['httpbin', 'sleep'] as const) {
    const port = role === 'httpbin' ? HTTPBIN_PORT : SLEEP_CONTROL_PORT;
    objects.push(
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: role, namespace } },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: role, namespace, labels: { app: role } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: role } },
          template: {
            metadata: { labels: { app: role } },
            spec: {
              serviceAccountName: role,
              // The API token is not needed: the workload's only credential is the istio-ca one.
              automountServiceAccountToken: false,
              securityContext: { runAsUser: IMAGE_UID, runAsGroup: IMAGE_UID, runAsNonRoot: true, supplementalGroups: [MESH_PROXY_GID], seccompProfile: { type: 'RuntimeDefault' } },
              containers: [
                {
                  name: role,
                  image,
                  imagePullPolicy: 'IfNotPresent',
                  args: [
                    'playground', 'workload', '--role', role, `--namespace=${namespace}`,
                    `--socket=${AGENT_SOCKET_DIR}/uds_path`, `--token-file=${TOKEN_DIR}/istio-token`, `--port=${port}`,
                    ...(role === 'httpbin' ? ['--address=0.0.0.0'] : []),
                  ],
                  ...(role === 'httpbin' ? { ports: [{ name: 'https', containerPort: HTTPBIN_PORT }], readinessProbe: { tcpSocket: { port: HTTPBIN_PORT }, periodSeconds: 1 } } : {}),
                  volumeMounts: [
                    { name: 'sds', mountPath: AGENT_SOCKET_DIR },
                    { name: 'istio-token', mountPath: TOKEN_DIR, readOnly: true },
                  ],
                  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                  resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '256Mi' } },
                },
              ],
              volumes: [
                { name: 'sds', hostPath: { path: AGENT_SOCKET_DIR, type: 'Directory' } },
                { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: CA_AUDIENCE, expirationSeconds: TOKEN_SECONDS, path: 'istio-token' } }] } },
              ],
            },
          },
        },
      } as KubernetesObject,
    );
  }
  return objects;
}
