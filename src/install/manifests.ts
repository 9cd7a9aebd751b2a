import type { KubernetesObject } from '@kubernetes/client-node';
import { ADMIN_GROUP, DEFAULT_CA_PORT, MESHID_GROUP, MESHID_RESOURCES, MESHID_SERVICE, ROOT_CONFIGMAP } from '../contract/index.ts';
import { IMPERSONATED_EXTRA_KEYS } from '../kube/index.ts';

export interface InstallOptions {
  namespace: string;
  anonymousAuth: boolean;
  image: string;
  /** 0 where there are no nodes to run pods (the playground runs the server as a process). */
  replicas: number;
  /**
   * The ConfigMap the CA publishes its trust bundle in (the server's `ca.rootConfigMap`): the
   * only ConfigMap meshid may touch outside its namespace. Default `istio-ca-root-cert`.
   */
  rootConfigMap?: string;
  /**
   * A `kubernetes.io/tls` Secret in meshid's namespace with the server's HTTPS certificate
   * (for example one cert-manager keeps). Without one each replica makes its own self-signed
   * certificate, which no client can pin across replicas.
   */
  tlsSecret?: string;
}

export const SERVICE_ACCOUNT = 'meshid';
export const SERVICE_NAME = MESHID_SERVICE;
export const HTTP_PORT = 5681;
export const HTTPS_PORT = 5682;
export const AGENT_SERVICE_ACCOUNT = 'meshid-agent';
/** Where the agent's SDS socket lives on each node; pods mount the folder. */
export const AGENT_SOCKET_DIR = '/var/run/sds';
/**
 * The group that may connect to the agent's socket (mode 0660): Istio's proxies run with gid
 * 1337, so a pod joins it with `supplementalGroups: [1337]`. Presenting its own token is still
 * what the agent checks; the group only keeps other local users off the socket.
 */
export const MESH_PROXY_GID = 1337;
const TLS_MOUNT = '/etc/meshid/tls';
/** How long a deleted server pod keeps serving before it is told to stop (see the Deployment). */
const PRE_STOP_SECONDS = 5;
/** The CA's ledger of issued identities, in meshid's namespace. */
const ISSUED_IDENTITIES_CONFIGMAP = 'meshid-issued-identities';
const RBAC = 'rbac.authorization.k8s.io/v1';
const RBAC_GROUP = 'rbac.authorization.k8s.io';
const LABELS = { 'app.kubernetes.io/name': 'meshid', 'app.kubernetes.io/part-of': 'meshid' };

const obj = (o: Record<string, unknown>): KubernetesObject => o;

/** Cluster-wide objects that every installation shares; only `uninstall --purge` deletes them. */
export const SHARED_OBJECTS = new Set(['ClusterRole/meshid-admin', 'ClusterRole/meshid-viewer', 'ClusterRoleBinding/meshid-admin']);

/** Everything `meshid install` creates, in apply order (namespace first). */
export function installManifests(o: InstallOptions): KubernetesObject[] {
  const ns = o.namespace;
  const meta = (name: string, namespaced = true): Record<string, unknown> => ({ name, ...(namespaced ? { namespace: ns } : {}), labels: LABELS });
  const sa = { kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: ns };
  const agent = { kind: 'ServiceAccount', name: AGENT_SERVICE_ACCOUNT, namespace: ns };
  // Cluster-scoped objects of one installation carry its namespace, so installations in
  // several namespaces never overwrite each other's bindings.
  const serverRole = `meshid-server-${ns}`;
  const roots = o.rootConfigMap ?? ROOT_CONFIGMAP;
  return [
    obj({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: LABELS } }),
    obj({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(SERVICE_ACCOUNT) }),
    obj({
      apiVersion: RBAC,
      kind: 'ClusterRole',
      metadata: meta(serverRole, false),
      rules: [
        // Login: check tokens, and ask what a user may do.
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
        { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
        // Every proxied call goes out as the logged-in user. Extras are granted key by key:
        // RBAC has no wildcard for them (`userextras/*` matches no key).
        { apiGroups: [''], resources: ['users', 'groups', 'serviceaccounts'], verbs: ['impersonate'] },
        { apiGroups: ['authentication.k8s.io'], resources: ['uids', ...IMPERSONATED_EXTRA_KEYS.map((key) => `userextras/${key}`)], verbs: ['impersonate'] },
        // The workload CA publishes its roots in every namespace, and nothing else of anyone's:
        // list and watch name the ConfigMap with a metadata.name field selector, and a
        // server-side apply that creates it is authorized as a create of that name.
        { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['configmaps'], resourceNames: [roots], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
        // Node authorization of ambient node proxies (ztunnel): is a pod of the identity asked
        // for on the proxy's node? Only list, each with a spec.nodeName and serviceAccountName
        // field selector (RBAC cannot narrow by selector); no get or watch of pods anywhere.
        { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      ],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'ClusterRoleBinding',
      metadata: meta(serverRole, false),
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: serverRole },
      subjects: [sa],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'Role',
      metadata: meta('meshid-server'),
      rules: [
        // Keys live in Secrets in meshid's namespace, and nowhere else.
        { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        // The CA's ledger of issued identities, merged by replicas. A create names its object
        // only in the body, so RBAC cannot narrow it to one name; it stays in this namespace.
        { apiGroups: [''], resources: ['configmaps'], resourceNames: [ISSUED_IDENTITIES_CONFIGMAP], verbs: ['get', 'update'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
      ],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'RoleBinding',
      metadata: meta('meshid-server'),
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: 'meshid-server' },
      subjects: [sa],
    }),
    // The cluster's client CA, to check client-certificate logins (a built-in Role).
    obj({
      apiVersion: RBAC,
      kind: 'RoleBinding',
      metadata: { name: `meshid-server-authentication-reader-${ns}`, namespace: 'kube-system', labels: LABELS },
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: 'extension-apiserver-authentication-reader' },
      subjects: [sa],
    }),
    // Shared by every installation: what `meshid.io` permissions mean.
    obj({
      apiVersion: RBAC,
      kind: 'ClusterRole',
      metadata: meta('meshid-admin', false),
      rules: [{ apiGroups: [MESHID_GROUP], resources: [...MESHID_RESOURCES], verbs: ['*'] }],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'ClusterRole',
      metadata: meta('meshid-viewer', false),
      rules: [{ apiGroups: [MESHID_GROUP], resources: [...MESHID_RESOURCES], verbs: ['get', 'list', 'watch'] }],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'ClusterRoleBinding',
      metadata: meta('meshid-admin', false),
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: 'meshid-admin' },
      subjects: [{ apiGroup: RBAC_GROUP, kind: 'Group', name: ADMIN_GROUP }],
    }),
    // Zero-touch access: any authenticated kube user may reach meshid's login through the
    // apiserver's service proxy; meshid then authenticates them itself.
    obj({
      apiVersion: RBAC,
      kind: 'Role',
      metadata: meta('meshid-service-proxy'),
      rules: [{ apiGroups: [''], resources: ['services/proxy'], resourceNames: [SERVICE_NAME, `https:${SERVICE_NAME}:${HTTPS_PORT}`, `http:${SERVICE_NAME}:${HTTP_PORT}`], verbs: ['get', 'create', 'update', 'patch', 'delete'] }],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'RoleBinding',
      metadata: meta('meshid-service-proxy'),
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: 'meshid-service-proxy' },
      subjects: [{ apiGroup: RBAC_GROUP, kind: 'Group', name: 'system:authenticated' }],
    }),
    obj({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(SERVICE_NAME),
      spec: {
        selector: { 'app.kubernetes.io/name': 'meshid' },
        ports: [
          { name: 'http', port: HTTP_PORT, targetPort: 'http' },
          { name: 'https', port: HTTPS_PORT, targetPort: 'https' },
          { name: 'grpc-ca', port: DEFAULT_CA_PORT, targetPort: 'grpc-ca' },
        ],
      },
    }),
    obj({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('meshid'),
      spec: {
        replicas: o.replicas,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'meshid' } },
        template: {
          metadata: { labels: LABELS },
          spec: {
            serviceAccountName: SERVICE_ACCOUNT,
            securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'server',
                image: o.image,
                args: [
                  'server', `--namespace=${ns}`, '--ca',
                  ...(o.anonymousAuth ? ['--anonymous-auth'] : []),
                  ...(o.tlsSecret ? [`--tls-cert-file=${TLS_MOUNT}/tls.crt`, `--tls-key-file=${TLS_MOUNT}/tls.key`] : []),
                ],
                ...(o.tlsSecret ? { volumeMounts: [{ name: 'tls', mountPath: TLS_MOUNT, readOnly: true }] } : {}),
                ports: [
                  { name: 'http', containerPort: HTTP_PORT },
                  { name: 'https', containerPort: HTTPS_PORT },
                  { name: 'grpc-ca', containerPort: DEFAULT_CA_PORT },
                ],
                // Probed every 2 s (the default is 10): a new replica takes traffic, and a rollout or
                // a recovery moves on, seconds sooner; /readyz answers from memory.
                readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 2 },
                livenessProbe: { httpGet: { path: '/healthz', port: 'http' } },
                // A deleted pod leaves the Service's endpoints while it is told to stop, and
                // kube-proxy learns of it a moment later: serving on for a few seconds first
                // means no new connection lands on a server that has closed (the kubelet's own
                // sleep: the image has no shell). SIGTERM then drains the keep-alive clients.
                lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              },
            ],
            ...(o.tlsSecret ? { volumes: [{ name: 'tls', secret: { secretName: o.tlsSecret } }] } : {}),
          },
        },
      },
    }),
    // The per-node SDS agent: it reviews workload tokens and reads the trust bundle, nothing else.
    obj({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(AGENT_SERVICE_ACCOUNT) }),
    obj({
      apiVersion: RBAC,
      kind: 'ClusterRole',
      metadata: meta(`meshid-agent-${ns}`, false),
      rules: [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'ClusterRoleBinding',
      metadata: meta(`meshid-agent-${ns}`, false),
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: `meshid-agent-${ns}` },
      subjects: [agent],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'Role',
      metadata: meta('meshid-agent'),
      rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [roots], verbs: ['get', 'list', 'watch'] }],
    }),
    obj({
      apiVersion: RBAC,
      kind: 'RoleBinding',
      metadata: meta('meshid-agent'),
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: 'meshid-agent' },
      subjects: [agent],
    }),
    obj({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: meta('meshid-agent'),
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'meshid-agent' } },
        template: {
          metadata: { labels: { ...LABELS, 'app.kubernetes.io/name': 'meshid-agent' } },
          spec: {
            serviceAccountName: AGENT_SERVICE_ACCOUNT,
            // The kubelet creates the hostPath folder owned by root, so the agent runs as uid 0,
            // with every capability dropped: it can write that folder and nothing root-only.
            // Its gid makes the socket (0660) reachable by pods in the proxies' group only.
            securityContext: { runAsUser: 0, runAsGroup: MESH_PROXY_GID, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'agent',
                image: o.image,
                args: ['agent', `--namespace=${ns}`, `--socket=${AGENT_SOCKET_DIR}/uds_path`, `--ca-address=${SERVICE_NAME}.${ns}.svc:${DEFAULT_CA_PORT}`],
                volumeMounts: [{ name: 'sds', mountPath: AGENT_SOCKET_DIR }],
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } },
              },
            ],
            volumes: [{ name: 'sds', hostPath: { path: AGENT_SOCKET_DIR, type: 'DirectoryOrCreate' } }],
          },
        },
      },
    }),
    obj({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta('meshid'),
      spec: { minAvailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'meshid' } } },
    }),
  ];
}
