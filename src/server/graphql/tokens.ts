import { MeshidError } from '../../core/index.ts';
import { issueUserToken, revokeUserTokens, rotateSigningKey, type Issuer } from '../../tokens/index.ts';
import { requireCapability } from '../permissions.ts';
import { actor, type DashboardContext, type DashboardDeps } from './context.ts';

function userTokens(ctx: DashboardContext): NonNullable<DashboardDeps['userTokens']> {
  if (!ctx.deps.userTokens) throw new MeshidError('ERR_AUTH_DISABLED', 'user tokens are off in anonymous mode');
  return ctx.deps.userTokens;
}

function signingKeys(ctx: DashboardContext) {
  const keys = userTokens(ctx).keys;
  if (!keys) throw new MeshidError('ERR_ISSUER_DISABLED', 'this control plane keeps no signing keys in Secrets (static keys only)');
  return keys;
}

/**
 * The stores as the use cases reach them: looked up only then, so a malformed request is
 * refused as such, and RBAC asked, before anonymous mode's ERR_AUTH_DISABLED, as always.
 */
function stores(ctx: DashboardContext) {
  const issuer: Issuer = {
    get enabled() {
      return userTokens(ctx).issuer.enabled;
    },
    issue: (request) => userTokens(ctx).issuer.issue(request),
  };
  return { issuer, revocations: { revoke: (jtis: string[]) => userTokens(ctx).revocations.revoke(jtis) }, keys: { rotate: () => signingKeys(ctx).rotate() } };
}

export const tokenResolvers = {
  Query: {
    async signingKeys(_: unknown, _args: unknown, ctx: DashboardContext) {
      await requireCapability(ctx.deps.reviews, ctx.user, 'listSigningKeys');
      const list = signingKeys(ctx).list();
      const active = Math.max(...list.map((k) => k.serial));
      return list.map((k) => ({ serial: k.serial, createdAt: k.createdAt ?? null, active: k.serial === active }));
    },

    async revokedTokens(_: unknown, _args: unknown, ctx: DashboardContext) {
      await requireCapability(ctx.deps.reviews, ctx.user, 'listRevocations');
      return userTokens(ctx).revocations.list();
    },
  },

  Mutation: {
    async generateUserToken(_: unknown, args: { name: string; groups?: string[] | null; validFor: string }, ctx: DashboardContext) {
      const authorize = () => requireCapability(ctx.deps.reviews, ctx.user, 'issueUserToken');
      return issueUserToken({ issuer: stores(ctx).issuer, audit: ctx.deps.events, authorize }, { user: actor(ctx) }, args);
    },

    async revokeToken(_: unknown, args: { id: string }, ctx: DashboardContext) {
      const authorize = () => requireCapability(ctx.deps.reviews, ctx.user, 'revokeToken');
      await revokeUserTokens({ revocations: stores(ctx).revocations, audit: ctx.deps.events, authorize }, { user: actor(ctx) }, [args.id]);
      return { id: args.id, revokedTokens: new Set([...userTokens(ctx).revocations.list(), args.id]).size };
    },

    async rotateSigningKey(_: unknown, _args: unknown, ctx: DashboardContext) {
      const authorize = () => requireCapability(ctx.deps.reviews, ctx.user, 'rotateSigningKey');
      const serial = await rotateSigningKey({ keys: stores(ctx).keys, audit: ctx.deps.events, authorize }, { user: actor(ctx) });
      return { serial, createdAt: new Date(ctx.deps.clock.now()).toISOString(), active: true };
    },
  },
};
