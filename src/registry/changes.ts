import { audit, type Actor, type AuditTrail } from '../kube/index.ts';
import { checkEntryName, summarize, type DockerConfig } from './dockerconfig.ts';
import type { RegistryStore } from './store.ts';

export interface RegistryChangeDeps {
  /** The store as the caller reaches it (the dashboard's goes as the user, through impersonation). */
  store: Pick<RegistryStore, 'add' | 'remove'>;
  audit: AuditTrail;
  /** The caller's permission check (RBAC on registries.meshid.io), asked once the input is known good. */
  authorize(): Promise<void>;
}

/**
 * The use case "add (or, with `replace`, re-key) a registry entry", for the CLI and the
 * dashboard: the name and every credential are checked before anything is asked or
 * written, and the change is audited naming servers, never a secret.
 */
export async function addRegistryEntry(deps: RegistryChangeDeps, by: Actor, name: string | undefined, config: DockerConfig, options: { replace?: boolean } = {}): Promise<{ name: string; created: boolean }> {
  const entry = checkEntryName(name);
  const servers = summarize(config).map((s) => s.server);
  await deps.authorize();
  const { created } = await deps.store.add(entry, config, { replace: options.replace ?? false });
  await audit(deps.audit, by, 'RegistryChanged', `${created ? 'added' : 're-keyed'} registry entry ${entry} for ${servers.join(', ')}`);
  return { name: entry, created };
}

/** The use case "remove a registry entry": `registry reconcile` then deletes its pull secrets. */
export async function removeRegistryEntry(deps: RegistryChangeDeps, by: Actor, name: string | undefined): Promise<string> {
  const entry = checkEntryName(name);
  await deps.authorize();
  await deps.store.remove(entry);
  await audit(deps.audit, by, 'RegistryChanged', `removed registry entry ${entry}`);
  return entry;
}
