import { rotateCa, type CaStatus } from '../../ca/index.ts';
import { requireCapability } from '../permissions.ts';
import { actor, type DashboardContext } from './context.ts';

function view(status: CaStatus) {
  return {
    mode: status.mode,
    rootFingerprint: status.rootFingerprint,
    notAfter: status.notAfter,
    trustBundle: status.trustBundle,
    newRootSignsAt: status.rotation?.newRootSignsAt ?? null,
    oldRootsDroppedAt: status.rotation?.oldRootsDroppedAt ?? null,
    error: status.error ?? null,
  };
}

export const caResolvers = {
  Query: {
    async certificateAuthority(_: unknown, _args: unknown, ctx: DashboardContext) {
      await requireCapability(ctx.deps.reviews, ctx.user, 'readCa');
      return view(await ctx.deps.caStatus());
    },
  },
  Mutation: {
    /** The same staged rotation as `meshid ca rotate`, with its default timings. */
    async rotateCA(_: unknown, _args: unknown, ctx: DashboardContext) {
      await requireCapability(ctx.deps.reviews, ctx.user, 'rotateCa');
      await rotateCa(ctx.deps.kc, ctx.deps.namespace, { clock: ctx.deps.clock, audit: { trail: ctx.deps.events, by: { user: actor(ctx) } } });
      return view(await ctx.deps.caStatus());
    },
  },
};
