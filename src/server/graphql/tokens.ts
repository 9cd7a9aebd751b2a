import { decodeJwt } from 'jose';
import { MeshidError } from '../../core/index.ts';
import { issuerDisabled } from '../../tokens/index.ts';
import { requireCapability } from '../permissions.ts';
import { parseUserTokenRequest } from '../user-token-request.ts';
import { actor, type DashboardContext, type DashboardDeps } from './context.ts';

/** A jti is a UUID from meshid; anything printable up to this length may come from elsewhere. */
const TOKEN_ID = /^[\x21-\x7e]{1,256}$/;

function userTokens(ctx: DashboardContext): NonNullable<DashboardDeps['userTokens']> {
  if (!ctx.deps.userTokens) throw new MeshidError('ERR_AUTH_DISABLED', 'user tokens are off in anonymous mode');
  return ctx.deps.userTokens;
}

function signingKeys(ctx: DashboardContext) {
  const keys = userTokens(ctx).keys;
  if (!keys) throw new MeshidError('ERR_ISSUER_DISABLED', 'this control plane keeps no signing keys in Secrets (static keys only)');
  return keys;
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
      const request = parseUserTokenRequest(args);
      const { issuer } = userTokens(ctx);
      if (!issuer.enabled) throw issuerDisabled();
      await requireCapability(ctx.deps.reviews, ctx.user, 'issueUserToken');
      const token = issuer.issue(request);
      const claims = decodeJwt(token);
      const id = String(claims.jti);
      ctx.deps.events.record({ reason: 'TokenIssued', user: actor(ctx), message: `issued user token ${id} for ${request.name} (groups ${request.groups.join(', ') || 'none'})` });
      return { id, token, name: request.name, groups: request.groups, expiresAt: new Date(Number(claims.exp) * 1000).toISOString() };
    },

    async revokeToken(_: unknown, args: { id: string }, ctx: DashboardContext) {
      if (!TOKEN_ID.test(args.id)) throw new MeshidError('ERR_INVALID_ARGUMENT', 'id must be a token id (its jti claim): 1 to 256 printable characters');
      await requireCapability(ctx.deps.reviews, ctx.user, 'revokeToken');
      const { revocations } = userTokens(ctx);
      await revocations.revoke([args.id]);
      ctx.deps.events.record({ reason: 'TokenRevoked', user: actor(ctx), message: `revoked user token ${args.id}` });
      return { id: args.id, revokedTokens: new Set([...revocations.list(), args.id]).size };
    },

    async rotateSigningKey(_: unknown, _args: unknown, ctx: DashboardContext) {
      await requireCapability(ctx.deps.reviews, ctx.user, 'rotateSigningKey');
      const serial = await signingKeys(ctx).rotate();
      ctx.deps.events.record({ reason: 'SigningKeyRotated', user: actor(ctx), message: `new user-token signing key ${serial}; older keys still validate until removed` });
      return { serial, createdAt: new Date(ctx.deps.clock.now()).toISOString(), active: true };
    },
  },
};
