import { RECOVERY_CA_GRACE_MS, RECOVERY_CA_PROPAGATION_MS, STEPS, meshScope, planRecovery } from '../../recovery/index.ts';
import { REGISTRY_NAMESPACE } from '../../registry/index.ts';
import { asUser, requireCapability } from '../permissions.ts';
import type { DashboardContext } from './context.ts';

export const recoveryResolvers = {
  Mutation: {
    /**
     * What `meshid recover all --dry-run` prints, gathered as the user (the inventory reads
     * Secrets across the mesh namespaces, so their RBAC decides), and never acted on.
     */
    async recoverPlan(_: unknown, _args: unknown, ctx: DashboardContext) {
      await requireCapability(ctx.deps.reviews, ctx.user, 'planRecovery');
      const namespace = ctx.deps.namespace;
      const { plan } = await asUser(ctx.user, { verb: 'list', group: '', resource: 'secrets', namespace }, () =>
        planRecovery(ctx.kube, {
          meshidNamespace: namespace,
          registryNamespace: REGISTRY_NAMESPACE,
          rootConfigMap: ctx.deps.rootConfigMap,
          scope: meshScope({ meshidNamespace: namespace, registryNamespace: REGISTRY_NAMESPACE }),
          steps: [...STEPS],
          ca: { propagationMs: RECOVERY_CA_PROPAGATION_MS, graceMs: RECOVERY_CA_GRACE_MS, restartWorkloads: false },
          reissueAdminToken: true,
          // Only a run waits; the plan does not.
          rolloutTimeoutMs: 0,
          verifyTimeoutMs: 0,
        }),
      );
      return {
        meshidNamespace: plan.meshidNamespace,
        meshNamespaces: plan.meshNamespaces,
        steps: plan.steps.map((s) => ({ step: s.step, description: s.description, summary: s.summary, blocked: s.blocked ?? null, actions: s.actions })),
      };
    },
  },
};
