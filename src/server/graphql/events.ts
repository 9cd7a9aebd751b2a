import { CAPABILITIES } from '../../contract/index.ts';
import { listSecurityEvents } from '../../kube/index.ts';
import { asUser } from '../permissions.ts';
import type { DashboardContext } from './context.ts';

const MAX_EVENTS = 500;

export const eventResolvers = {
  Query: {
    /** Read as the user: `kubectl get events -n <meshid namespace>` is what decides. */
    async securityEvents(_: unknown, args: { limit?: number | null }, ctx: DashboardContext) {
      const limit = Math.min(Math.max(1, args.limit ?? 50), MAX_EVENTS);
      const namespace = ctx.deps.namespace;
      const { verb, group, resource } = CAPABILITIES.listEvents;
      return asUser(ctx.user, { verb, group, resource, namespace }, () => listSecurityEvents(ctx.kube, namespace, limit));
    },
  },
};
