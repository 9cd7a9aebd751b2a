import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { MeshidError } from '../core/index.ts';
import { globalOptions } from './globals.ts';
import { printStructured } from './output.ts';
import { kubernetesDecides, operatorAudit } from './audit.ts';

// Loaded when a command runs, so `--help` stays instant.
const lazy = async () => ({ ...(await import('../kube/index.ts')), ...(await import('../registry/index.ts')) });
// Which namespaces are the mesh's is recovery's notion; only reconcile needs it.
const lazyScope = async () => ({ ...(await lazy()), ...(await import('../recovery/index.ts')) });

const REGISTRY_NAMESPACE_DEFAULT = 'meshid-registry-access';

interface RegistryFlags {
  registryNamespace: string;
}

function withRegistryNamespace(command: Command): Command {
  return command.option('--registry-namespace <name>', 'where the registry credentials are kept', REGISTRY_NAMESPACE_DEFAULT);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new MeshidError('ERR_REGISTRY_INVALID', 'the credentials are read from standard input, which is a terminal', { hint: 'Pipe them in: `echo "$PASSWORD" | meshid registry add … --password-stdin`.' });
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerRegistryCommands(program: Command): void {
  const registry = program.command('registry').description('image-registry credentials (dockerconfigjson Secrets in meshid-registry-access) and the pull secrets made from them');

  withRegistryNamespace(registry.command('list'))
    .description('entry names, registry servers and users; never a password or auth string')
    .action(async (flags: RegistryFlags, command: Command) => {
      const g = globalOptions(command);
      const { loadKubeConfig, RegistryStore } = await lazy();
      const entries = await new RegistryStore(loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context }), flags.registryNamespace).list();
      if (g.output !== 'text') return printStructured(entries, g.output);
      const rows = entries.flatMap((e) => (e.servers.length > 0 ? e.servers.map((s) => [e.name, s.server, s.username, e.updatedAt ?? '']) : [[e.name, e.error ?? '?', '', e.updatedAt ?? '']]));
      const table = [['NAME', 'SERVER', 'USERNAME', 'UPDATED'], ...rows];
      const widths = [0, 1, 2].map((i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
      process.stdout.write(table.map((r) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c)).join('  ').trimEnd()).join('\n') + '\n');
      if (entries.length === 0) process.stderr.write(`No registry credentials in ${flags.registryNamespace}.\n`);
    });

  withRegistryNamespace(registry.command('add'))
    .description('store credentials for a registry; every input is checked before anything is written')
    .option('--name <name>', 'entry name (also the name of the pull secrets made from it)')
    .option('--server <address>', 'registry address, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com')
    .option('--username <user>', 'registry user')
    .option('--password-stdin', 'read the password from standard input')
    .option('--docker-config <file>', 'a docker config.json ({"auths": …}), or - for standard input, instead of --server/--username/--password-stdin')
    .option('--replace', 'replace the credentials of an existing entry (re-keying)')
    .action(async (flags: RegistryFlags & { name?: string; server?: string; username?: string; passwordStdin?: boolean; dockerConfig?: string; replace?: boolean }, command: Command) => {
      const g = globalOptions(command);
      const { loadKubeConfig, RegistryStore, addRegistryEntry, checkEntryName, dockerConfigFor, parseDockerConfig, passwordFromStdin, summarize } = await lazy();
      // Checked again by the use case; here so that a bad name does not wait on standard input.
      const name = checkEntryName(flags.name);
      let config;
      if (flags.dockerConfig !== undefined) {
        if (flags.server !== undefined || flags.username !== undefined || flags.passwordStdin) {
          throw new MeshidError('ERR_REGISTRY_INVALID', '--docker-config cannot be combined with --server, --username or --password-stdin');
        }
        const text = flags.dockerConfig === '-' ? await readStdin() : await readFile(flags.dockerConfig, 'utf8').catch((error: unknown) => {
          throw new MeshidError('ERR_REGISTRY_INVALID', `--docker-config ${flags.dockerConfig ?? ''}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
        });
        config = parseDockerConfig(text, `--docker-config ${flags.dockerConfig}`);
      } else {
        if (!flags.passwordStdin) {
          if (flags.server === undefined && flags.username === undefined) {
            throw new MeshidError('ERR_REGISTRY_INVALID', 'give --server, --username and --password-stdin, or --docker-config FILE', { hint: 'echo "$PASSWORD" | meshid registry add --name ecr --server HOST --username USER --password-stdin' });
          }
          throw new MeshidError('ERR_REGISTRY_INVALID', 'the password must come from --password-stdin', { hint: 'A password on the command line ends up in shell history and process lists.' });
        }
        // Check the flags first, so a mistake does not wait on standard input.
        dockerConfigFor(flags.server ?? '', flags.username, 'placeholder');
        config = dockerConfigFor(flags.server ?? '', flags.username, passwordFromStdin(await readStdin()));
      }
      const kc = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context });
      const { by, trail } = await operatorAudit(kc, g.namespace);
      const store = new RegistryStore(kc, flags.registryNamespace);
      const { created } = await addRegistryEntry({ store, audit: trail, authorize: kubernetesDecides }, by, name, config, { replace: flags.replace ?? false });
      const servers = summarize(config);
      if (g.output !== 'text') return printStructured({ name, servers, created }, g.output);
      process.stderr.write(
        `${created ? 'Stored' : 'Re-keyed'} registry entry ${name} in ${flags.registryNamespace} (${servers.map((s) => `${s.server} as ${s.username}`).join(', ')}). ` +
          'Run `meshid registry reconcile` to update the pull secrets in the mesh namespaces.\n',
      );
    });

  withRegistryNamespace(registry.command('remove <name>'))
    .description('delete an entry; `registry reconcile` then deletes its pull secrets')
    .action(async (name: string, flags: RegistryFlags, command: Command) => {
      const g = globalOptions(command);
      const { loadKubeConfig, RegistryStore, removeRegistryEntry } = await lazy();
      const kc = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context });
      const { by, trail } = await operatorAudit(kc, g.namespace);
      await removeRegistryEntry({ store: new RegistryStore(kc, flags.registryNamespace), audit: trail, authorize: kubernetesDecides }, by, name);
      process.stderr.write(`Removed registry entry ${name}. Run \`meshid registry reconcile\` to delete its pull secrets from the mesh namespaces.\n`);
    });

  withRegistryNamespace(registry.command('reconcile'))
    .description("copy the pull secrets into the mesh namespaces, add them to the service accounts' imagePullSecrets, remove those whose entry is gone")
    .option('--mesh-namespaces <a,b>', `namespaces to reconcile into (default: meshid's namespace, the registry namespace, istio-system, cert-manager)`)
    .option('--mesh-label <selector>', 'namespaces with this label are reconciled too (default meshid.io/mesh=enabled; "" for none)')
    .option('--dry-run', 'say what would change, and change nothing')
    .action(async (flags: RegistryFlags & { meshNamespaces?: string; meshLabel?: string; dryRun?: boolean }, command: Command) => {
      const g = globalOptions(command);
      const { loadKubeConfig, reconcileRegistries, meshScope, parseNamespaceList, resolveMeshNamespaces } = await lazyScope();
      const kc = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context });
      const scope = meshScope({
        meshidNamespace: g.namespace,
        registryNamespace: flags.registryNamespace,
        namespaces: flags.meshNamespaces === undefined ? undefined : parseNamespaceList(flags.meshNamespaces),
        label: flags.meshLabel,
      });
      const { present, absent } = await resolveMeshNamespaces(kc, scope);
      const result = await reconcileRegistries(kc, { registryNamespace: flags.registryNamespace, namespaces: [...present, ...absent], dryRun: flags.dryRun ?? false });
      const conflicts = result.copies.filter((c) => c.action === 'conflict');
      if (g.output !== 'text') printStructured(result, g.output);
      else {
        const verb = (a: string): string => (flags.dryRun ? `would be ${a}` : a);
        const lines = [
          ...result.copies.filter((c) => c.action !== 'unchanged' && c.action !== 'conflict').map((c) => `Secret ${c.namespace}/${c.name}: ${verb(c.action)}`),
          ...result.serviceAccounts.map((sa) => `ServiceAccount ${sa.namespace}/${sa.name}: imagePullSecrets ${[...sa.added.map((n) => `+${n}`), ...sa.removed.map((n) => `-${n}`)].join(' ')}${flags.dryRun ? ' (dry run)' : ''}`),
        ];
        process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : '');
        process.stderr.write(`Reconciled ${result.entries.length} entr${result.entries.length === 1 ? 'y' : 'ies'} into ${result.namespaces.length} namespace${result.namespaces.length === 1 ? '' : 's'}${flags.dryRun ? ' (dry run: nothing changed)' : ''}; ${result.copies.filter((c) => c.action === 'unchanged').length} pull secrets were already up to date.\n`);
      }
      for (const c of conflicts) process.stderr.write(`warning: Secret ${c.namespace}/${c.name}: ${c.detail ?? 'conflict'}\n`);
      if (conflicts.length > 0) process.exitCode = 1;
    });
}
