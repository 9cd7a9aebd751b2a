import { AppsV1Api, type KubeConfig } from '@kubernetes/client-node';

/**
 * Pod spec fields for test workloads that stand for someone's application: their images are
 * nowhere (no registry is reachable), so they never reach the playground's node. No node
 * matches the selector (a DaemonSet wants no pod), and no scheduler serves the name (a pod
 * stays Pending, untouched, so its resourceVersion holds still).
 */
export const OFF_NODE = { nodeSelector: { 'meshid.test/placement': 'nowhere' }, schedulerName: 'meshid-test-none' } as const;

/**
 * A test installation's agent DaemonSet, kept off the node: its image (`meshid:test`) does not
 * exist, and the playground's own agent already serves the node's socket.
 */
export async function keepAgentOffNode(admin: KubeConfig, namespace: string): Promise<void> {
  await admin.makeApiClient(AppsV1Api).patchNamespacedDaemonSet({
    namespace,
    name: 'meshid-agent',
    body: [{ op: 'add', path: '/spec/template/spec/nodeSelector', value: OFF_NODE.nodeSelector }],
  });
}
