import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';
import { isNotFound, kubeStatus } from '../kube/index.ts';

/** Namespaces that carry this label are part of the mesh (the playground's foo and bar do). */
export const MESH_LABEL = 'meshid.io/mesh=enabled';
/** Where Istio and cert-manager usually run beside meshid. */
export const WELL_KNOWN_MESH_NAMESPACES = ['istio-system', 'cert-manager'] as const;

export interface MeshScopeInput {
  /** meshid's own namespace (-n). */
  meshidNamespace: string;
  registryNamespace: string;
  /** --mesh-namespaces: replaces the default list. */
  namespaces?: string[] | undefined;
  /** --mesh-label: a label selector; '' turns it off. */
  label?: string | undefined;
}

export interface MeshScope {
  /** Named namespaces, in order, without duplicates. */
  names: string[];
  /** Label selector whose namespaces join the list; undefined when none. */
  label: string | undefined;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Which namespaces recovery works in. Neither flag: meshid's namespace, the registry
 * namespace, istio-system, cert-manager, and those labelled meshid.io/mesh=enabled. One
 * flag: the list replaces the defaults, or the label replaces the default label. Both: exactly
 * the list plus the labelled ones.
 */
export function meshScope(input: MeshScopeInput): MeshScope {
  const names = input.namespaces ?? [input.meshidNamespace, input.registryNamespace, ...WELL_KNOWN_MESH_NAMESPACES];
  for (const name of names) {
    if (name.length > 63 || !NAME.test(name)) throw new MeshidError('ERR_INVALID_ARGUMENT', `--mesh-namespaces: "${name}" is not a namespace name`);
  }
  const label = input.label ?? (input.namespaces === undefined ? MESH_LABEL : undefined);
  return { names: [...new Set(names)], label: label === '' ? undefined : label };
}

/** Splits `a,b, c` into names; an empty list is a mistake worth an error. */
export function parseNamespaceList(value: string): string[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new MeshidError('ERR_INVALID_ARGUMENT', '--mesh-namespaces needs at least one namespace');
  return names;
}

/** The scope as the cluster has it now: which namespaces exist (and are not being deleted). */
export async function resolveMeshNamespaces(kc: KubeConfig, scope: MeshScope): Promise<{ present: string[]; absent: string[] }> {
  const api = kc.makeApiClient(CoreV1Api);
  const present: string[] = [];
  const absent: string[] = [];
  for (const name of scope.names) {
    const live = await api.readNamespace({ name }).then(
      (ns) => ns.status?.phase !== 'Terminating',
      (error: unknown) => {
        if (isNotFound(error)) return false;
        throw error;
      },
    );
    (live ? present : absent).push(name);
  }
  if (scope.label !== undefined) {
    let labelled;
    try {
      labelled = await api.listNamespace({ labelSelector: scope.label });
    } catch (error) {
      if (kubeStatus(error) === 400) throw new MeshidError('ERR_INVALID_ARGUMENT', `--mesh-label "${scope.label}" is not a label selector`, { cause: error });
      throw error;
    }
    for (const ns of labelled.items) {
      const name = ns.metadata?.name ?? '';
      if (name && ns.status?.phase !== 'Terminating' && !present.includes(name)) present.push(name);
    }
  }
  return { present, absent };
}
