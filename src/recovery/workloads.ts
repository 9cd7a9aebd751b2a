import { AppsV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject, type V1DaemonSet, type V1Deployment, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { FIELD_MANAGER, isNotFound } from '../kube/index.ts';

export type WorkloadKind = 'Deployment' | 'DaemonSet' | 'StatefulSet';

export interface Workload {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  /** A paused Deployment cannot be restarted (kubectl refuses too). */
  paused?: boolean;
}

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
  /** The controller that recreates it, when not one of the restarted workloads. */
  controller?: { kind: string; name: string; uid: string };
}

/** What restarting a namespace touches: workloads to roll, and pods to delete. */
export interface NamespaceWorkloads {
  workloads: Workload[];
  /** Pods no restarted workload owns: deleted, and recreated only if a controller owns them. */
  pods: PodRef[];
}

/** The annotation `kubectl rollout restart` sets on the pod template. */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

const controllerOf = (pod: { metadata?: { ownerReferences?: { controller?: boolean; kind: string; name: string; uid: string }[] } }) =>
  pod.metadata?.ownerReferences?.find((r) => r.controller === true);

/**
 * Which pods a restart of the workloads does not cover: those owned by neither a DaemonSet,
 * a StatefulSet, nor a ReplicaSet of a Deployment. Mirror pods (static pods) are skipped:
 * deleting them does nothing.
 */
export function podsToDelete(pods: V1Pod[], replicaSetOwners: Map<string, string>): PodRef[] {
  return pods
    .filter((p) => !p.metadata?.deletionTimestamp && !p.metadata?.annotations?.['kubernetes.io/config.mirror'])
    .flatMap((p) => {
      const owner = controllerOf(p);
      if (owner && (owner.kind === 'DaemonSet' || owner.kind === 'StatefulSet')) return [];
      if (owner?.kind === 'ReplicaSet' && replicaSetOwners.get(owner.uid) === 'Deployment') return [];
      const ref: PodRef = { namespace: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '', uid: p.metadata?.uid ?? '' };
      return [owner ? { ...ref, controller: { kind: owner.kind, name: owner.name, uid: owner.uid } } : ref];
    });
}

export async function listWorkloads(kc: KubeConfig, namespace: string): Promise<NamespaceWorkloads> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const [deployments, daemonSets, statefulSets, replicaSets, pods] = await Promise.all([
    apps.listNamespacedDeployment({ namespace }),
    apps.listNamespacedDaemonSet({ namespace }),
    apps.listNamespacedStatefulSet({ namespace }),
    apps.listNamespacedReplicaSet({ namespace }),
    core.listNamespacedPod({ namespace }),
  ]);
  const byName = <T extends { metadata?: { name?: string } }>(items: T[]) => [...items].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const workloads: Workload[] = [
    ...byName(deployments.items).map((d) => ({ kind: 'Deployment' as const, namespace, name: d.metadata?.name ?? '', ...(d.spec?.paused ? { paused: true } : {}) })),
    ...byName(daemonSets.items).map((d) => ({ kind: 'DaemonSet' as const, namespace, name: d.metadata?.name ?? '' })),
    ...byName(statefulSets.items).map((s) => ({ kind: 'StatefulSet' as const, namespace, name: s.metadata?.name ?? '' })),
  ];
  const rsOwners = new Map(replicaSets.items.map((rs) => [rs.metadata?.uid ?? '', controllerOf(rs)?.kind ?? '']));
  return { workloads, pods: podsToDelete(byName(pods.items), rsOwners) };
}

/**
 * `kubectl rollout restart`: a strategic-merge patch of the pod template's restartedAt
 * annotation, so the controller rolls every pod. Answers the generation to wait for.
 */
export async function restartWorkload(kc: KubeConfig, workload: Workload, now: Date): Promise<number> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const patched = await api.patch(
    {
      apiVersion: 'apps/v1',
      kind: workload.kind,
      metadata: { name: workload.name, namespace: workload.namespace },
      spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: now.toISOString().replace(/\.\d{3}Z$/, 'Z') } } } },
    } as KubernetesObject & { metadata: { generation?: number } },
    undefined,
    undefined,
    FIELD_MANAGER,
    undefined,
    PatchStrategy.StrategicMergePatch,
  );
  return patched.metadata?.generation ?? 0;
}

/** Deletes a pod; one already gone is fine. */
export async function deletePod(kc: KubeConfig, pod: PodRef): Promise<void> {
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespacedPod({ namespace: pod.namespace, name: pod.name })
    .catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
}

export interface RolloutState {
  done: boolean;
  /** e.g. "1/3 updated pods available". */
  detail: string;
}

/** `kubectl rollout status`, for one reading of the object. */
export function rolloutState(kind: WorkloadKind, object: V1Deployment | V1DaemonSet | V1StatefulSet, generation: number): RolloutState {
  const observed = object.status?.observedGeneration ?? 0;
  if (observed < generation) return { done: false, detail: 'the controller has not seen the restart yet' };
  if (kind === 'Deployment') {
    const d: V1Deployment = object;
    const want = d.spec?.replicas ?? 1;
    const updated = d.status?.updatedReplicas ?? 0;
    const total = d.status?.replicas ?? 0;
    const available = d.status?.availableReplicas ?? 0;
    const done = updated >= want && total <= updated && available >= updated;
    return { done, detail: `${Math.min(available, updated)}/${want} updated pods available` };
  }
  if (kind === 'DaemonSet') {
    const d = object as V1DaemonSet;
    const want = d.status?.desiredNumberScheduled ?? 0;
    const updated = d.status?.updatedNumberScheduled ?? 0;
    const available = d.status?.numberAvailable ?? 0;
    return { done: updated >= want && available >= want, detail: `${Math.min(updated, available)}/${want} updated pods available` };
  }
  const s = object as V1StatefulSet;
  const want = s.spec?.replicas ?? 1;
  const ready = s.status?.readyReplicas ?? 0;
  const updated = want === 0 || s.status?.updateRevision === undefined || s.status.updateRevision === s.status.currentRevision;
  return { done: ready >= want && updated, detail: `${ready}/${want} pods ready${updated ? '' : ', not all updated'}` };
}

export async function readRollout(kc: KubeConfig, workload: Workload, generation: number): Promise<RolloutState> {
  const apps = kc.makeApiClient(AppsV1Api);
  const args = { namespace: workload.namespace, name: workload.name };
  try {
    const object =
      workload.kind === 'Deployment'
        ? await apps.readNamespacedDeployment(args)
        : workload.kind === 'DaemonSet'
          ? await apps.readNamespacedDaemonSet(args)
          : await apps.readNamespacedStatefulSet(args);
    return rolloutState(workload.kind, object, generation);
  } catch (error) {
    if (isNotFound(error)) return { done: false, detail: 'it was deleted' };
    throw error;
  }
}

/** Whether a deleted pod's controller has a Ready replacement (a pod it owns, of another name). */
export async function replacementReady(kc: KubeConfig, pod: PodRef): Promise<boolean> {
  if (!pod.controller) return false;
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: pod.namespace });
  return list.items.some(
    (p) =>
      p.metadata?.uid !== pod.uid &&
      !p.metadata?.deletionTimestamp &&
      controllerOf(p)?.uid === pod.controller?.uid &&
      (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  );
}
