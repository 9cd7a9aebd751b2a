import { REGISTRY_NAMESPACE, RegistryStore, checkEntryName, dockerConfigFor } from '../../registry/index.ts';
import { asUser, requireCapability, type Permission } from '../permissions.ts';
import { actor, type DashboardContext } from './context.ts';

/** The registry namespace is not meshid's: its Secrets are read and written as the user. */
const secrets = (verb: string): Permission => ({ verb, group: '', resource: 'secrets', namespace: REGISTRY_NAMESPACE });

export const registryResolvers = {
  Query: {
    async registries(_: unknown, _args: unknown, ctx: DashboardContext) {
      await requireCapability(ctx.deps.reviews, ctx.user, 'listRegistries');
      const entries = await asUser(ctx.user, secrets('list'), () => new RegistryStore(ctx.kube).list());
      return entries.map((e) => ({ name: e.name, servers: e.servers, updatedAt: e.updatedAt ?? null, error: e.error ?? null }));
    },
  },
  Mutation: {
    async registryAdd(_: unknown, args: { name: string; server: string; username: string; password: string; email?: string | null }, ctx: DashboardContext) {
      const name = checkEntryName(args.name);
      const config = dockerConfigFor(args.server, args.username, args.password);
      if (args.email) for (const auth of Object.values(config.auths)) auth.email = args.email;
      await requireCapability(ctx.deps.reviews, ctx.user, 'addRegistry');
      const store = new RegistryStore(ctx.kube);
      await asUser(ctx.user, secrets('create'), () => store.add(name, config));
      ctx.deps.events.record({ reason: 'RegistryChanged', user: actor(ctx), message: `added registry entry ${name} for ${Object.keys(config.auths).join(', ')}` });
      const entry = (await asUser(ctx.user, secrets('list'), () => store.list())).find((e) => e.name === name);
      return { name, servers: entry?.servers ?? [], updatedAt: entry?.updatedAt ?? null, error: entry?.error ?? null };
    },

    async registryRemove(_: unknown, args: { name: string }, ctx: DashboardContext) {
      const name = checkEntryName(args.name);
      await requireCapability(ctx.deps.reviews, ctx.user, 'removeRegistry');
      await asUser(ctx.user, secrets('delete'), () => new RegistryStore(ctx.kube).remove(name));
      ctx.deps.events.record({ reason: 'RegistryChanged', user: actor(ctx), message: `removed registry entry ${name}` });
      return true;
    },
  },
};
