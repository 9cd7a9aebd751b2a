import { LOGIN_CAPABILITIES } from '../../contract/index.ts';
import { actor, type DashboardContext } from './context.ts';

export const meResolvers = {
  Query: {
    /** Who is calling and what they may do, asked fresh (SubjectAccessReview, cached seconds). */
    async me(_: unknown, _args: unknown, ctx: DashboardContext) {
      const caps = await ctx.deps.reviews.capabilities(ctx.user);
      return {
        name: actor(ctx),
        groups: ctx.user.groups,
        uid: ctx.user.uid ?? null,
        anonymous: ctx.anonymous,
        expiresAt: ctx.session ? new Date(ctx.session.expiresAt).toISOString() : null,
        capabilities: LOGIN_CAPABILITIES.map((c) => ({ key: c.key, verb: c.verb, group: c.group, resource: c.resource, allowed: caps[c.key] === true })),
      };
    },
  },
};
