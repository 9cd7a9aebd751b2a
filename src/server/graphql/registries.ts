import { REGISTRY_NAMESPACE, RegistryStore, addRegistryEntry, dockerConfigFor, removeRegistryEntry, type RegistryChangeDeps } from '../../registry/index.ts';
import { asUser, requireCapability, type Permission } from '../permissions.ts';
import { actor, type DashboardContext } from './context.ts';

/** The registry namespace is not meshid's: its Secrets are read and written as the user. */
const secrets = (verb: string): Permission => ({ verb, group: '', resource: 'secrets', namespace: REGISTRY_NAMESPACE });

/** The store as the user reaches it: their 403 names the Secrets permission they lack. */
function changes(ctx: DashboardContext, capability: 'addRegistry' | 'removeRegistry'): RegistryChangeDeps {
  const store = new RegistryStore(ctx.kube);
  return {
    store: {
      add: (...args) => asUser(ctx.user, secrets('create'), () => store.add(...args)),
      remove: (name) => asUser(ctx.user, secrets('delete'), () => store.remove(name)),
    },
    audit: ctx.deps.events,
    authorize: () => requireCapability(ctx.deps.reviews, ctx.user, capability),
  };
}

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
      const config = dockerConfigFor(args.server, args.username, args.password);
      if (args.email) for (const auth of Object.values(config.auths)) auth.email = args.email;
      const { name } = await addRegistryEntry(changes(ctx, 'addRegistry'), { user: actor(ctx) }, args.name, config);
      const entry = (await asUser(ctx.user, secrets('list'), () => new RegistryStore(ctx.kube).list())).find((e) => e.name === name);
      return { name, servers: entry?.servers ?? [], updatedAt: entry?.updatedAt ?? null, error: entry?.error ?? null };
    },

    async registryRemove(_: unknown, args: { name: string }, ctx: DashboardContext) {
      await removeRegistryEntry(changes(ctx, 'removeRegistry'), { user: actor(ctx) }, args.name);
      return true;
    },
  },
};
