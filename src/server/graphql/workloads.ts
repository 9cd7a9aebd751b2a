import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { readIssued, type IssuedIdentity } from '../../ca/index.ts';
import { spiffeId } from '../../contract/index.ts';
import { ForbiddenError, asUser, canI, type Permission } from '../permissions.ts';
import { actor, type DashboardContext } from './context.ts';

/** How many namespaces are asked about one by one for a user who may not list them all. */
const MAX_PROBED_NAMESPACES = 200;

const listPods = (namespace?: string): Permission => ({ verb: 'list', group: '', resource: 'pods', namespace });
const listNamespaces: Permission = { verb: 'list', group: '', resource: 'namespaces' };

/**
 * Where the caller may see workloads: everywhere when they may list pods cluster-wide;
 * otherwise each namespace (listed by the server, which may) is asked with can-i as the user.
 */
async function podNamespaces(ctx: DashboardContext): Promise<'all' | string[]> {
  const key = JSON.stringify([ctx.user?.name, ctx.user?.groups]);
  const cached = ctx.visibility.get(key);
  if (cached) return cached;
  const kube = ctx.kube;
  let answer: 'all' | string[];
  if (await asUser(ctx.user, listPods(), () => canI(kube, listPods()))) {
    answer = 'all';
  } else {
    const all = await ctx.deps.kc.makeApiClient(CoreV1Api).listNamespace({ limit: MAX_PROBED_NAMESPACES });
    const names = all.items.map((n) => n.metadata?.name ?? '').filter(Boolean);
    const allowed = await Promise.all(names.map(async (ns) => ((await asUser(ctx.user, listPods(ns), () => canI(kube, listPods(ns)))) ? ns : undefined)));
    answer = allowed.filter((ns): ns is string => ns !== undefined);
  }
  ctx.visibility.set(key, answer);
  return answer;
}

function workload(pod: V1Pod, trustDomain: string) {
  const namespace = pod.metadata?.namespace ?? '';
  const serviceAccount = pod.spec?.serviceAccountName ?? 'default';
  return {
    namespace,
    name: pod.metadata?.name ?? '',
    serviceAccount,
    spiffeId: spiffeId({ trustDomain, namespace, serviceAccount }),
    phase: pod.status?.phase ?? null,
    node: pod.spec?.nodeName ?? null,
  };
}

export const workloadResolvers = {
  Query: {
    async namespaces(_: unknown, _args: unknown, ctx: DashboardContext) {
      const api = ctx.kube.makeApiClient(CoreV1Api);
      try {
        const list = await asUser(ctx.user, listNamespaces, () => api.listNamespace());
        return list.items.map((n) => ({ name: n.metadata?.name ?? '' }));
      } catch (error) {
        // Without list namespaces, the namespaces that matter are those they may see pods in.
        if (!(error instanceof ForbiddenError)) throw error;
        const visible = await podNamespaces(ctx);
        return visible === 'all' ? [] : visible.map((name) => ({ name }));
      }
    },

    async workloads(_: unknown, args: { namespace?: string | null }, ctx: DashboardContext) {
      const api = ctx.kube.makeApiClient(CoreV1Api);
      const inNamespace = async (namespace: string) => (await asUser(ctx.user, listPods(namespace), () => api.listNamespacedPod({ namespace }))).items;
      let pods: V1Pod[];
      if (args.namespace) {
        pods = await inNamespace(args.namespace);
      } else {
        const visible = await podNamespaces(ctx);
        pods = visible === 'all' ? (await asUser(ctx.user, listPods(), () => api.listPodForAllNamespaces())).items : (await Promise.all(visible.map(inNamespace))).flat();
      }
      return pods.map((pod) => workload(pod, ctx.deps.trustDomain));
    },

    async identities(_: unknown, args: { namespace?: string | null }, ctx: DashboardContext): Promise<IssuedIdentity[]> {
      // The ledger is meshid's own ConfigMap; what a user sees of it follows their pod access.
      let visible: 'all' | string[];
      if (args.namespace) {
        const ns = args.namespace;
        const kube = ctx.kube;
        if (!(await asUser(ctx.user, listPods(ns), () => canI(kube, listPods(ns))))) throw new ForbiddenError(actor(ctx), listPods(ns));
        visible = [ns];
      } else {
        visible = await podNamespaces(ctx);
      }
      const issued = await readIssued(ctx.deps.kc, ctx.deps.namespace, ctx.deps.clock);
      return visible === 'all' ? issued : issued.filter((i) => visible.includes(i.namespace));
    },
  },
};
