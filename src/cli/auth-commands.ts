import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse, stringify } from 'yaml';
import { MeshidError, isMeshidError } from '../core/index.ts';
import type { Connection } from './connect.ts';
import { globalOptions } from './globals.ts';
import type { MeshidExtension } from '../kube/index.ts';
import { printStructured } from './output.ts';
import { registerControlPlaneCommands } from './control-plane-commands.ts';


interface ConnectFlags {
  url?: string;
  insecureSkipTlsVerify?: boolean;
}

function withConnectFlags(command: Command): Command {
  return command
    .option('--url <url>', "meshid's address, instead of the apiserver's service proxy")
    .option('--insecure-skip-tls-verify', "do not check meshid's serving certificate (with --url)");
}

// Commands load Kubernetes and HTTP code only when they run, so `--help` stays instant.
const lazy = async () => ({ ...(await import('./connect.ts')), ...(await import('./session.ts')), ...(await import('../kube/index.ts')) });

async function open(command: Command, flags: ConnectFlags): Promise<Connection> {
  const { connect } = await lazy();
  return connect(globalOptions(command), { url: flags.url, insecureSkipTlsVerify: flags.insecureSkipTlsVerify });
}

/** Never print a whole token where a glance is enough. */
const redact = (token: string | undefined): string | undefined => (token ? `${token.slice(0, 12)}…(${token.length} chars)` : undefined);

export function registerAuthCommands(program: Command): void {
  withConnectFlags(program.command('login').description('log in to meshid with the credentials of the current kubeconfig context')).action(
    async (flags: ConnectFlags, command: Command) => {
      const { output } = globalOptions(command);
      const { login } = await lazy();
      const conn = await open(command, flags);
      let result;
      try {
        result = await login(conn);
      } catch (error) {
        if (!isMeshidError(error, 'ERR_AUTH_DISABLED')) throw error;
        process.stderr.write('meshid runs in anonymous mode: there is no login, and every call acts as system:anonymous, so RBAC decides what it may do.\n');
        return;
      }
      if (output !== 'text') {
        printStructured({ user: result.user.name, groups: result.user.groups, expiresAt: result.expiresAt, token: result.token, wrappedToken: result.wrappedToken }, output);
        return;
      }
      process.stderr.write(`Logged in as ${result.user.name} (${result.user.groups.join(', ')}) until ${result.expiresAt}.\n`);
      process.stderr.write('Paste this into the dashboard login window within 10 seconds:\n');
      process.stdout.write(`${result.wrappedToken}\n`);
    },
  );

  withConnectFlags(program.command('logout').description('end the meshid session stored in the kubeconfig context, on the server and here')).action(
    async (flags: ConnectFlags, command: Command) => {
      const { logout } = await lazy();
      const conn = await open(command, flags);
      const { ended } = await logout(conn);
      process.stderr.write(ended ? `Logged out of context ${conn.context}: the server refuses the session from now on.\n` : `No meshid session in context ${conn.context}.\n`);
    },
  );

  withConnectFlags(program.command('whoami').description('who meshid thinks you are, and what you may do')).action(async (flags: ConnectFlags, command: Command) => {
    const { output } = globalOptions(command);
    const { openApiClient } = await import('./api-client.ts');
    const api = await openApiClient(command, flags);
    const answer = await api.send('GET', '/api/whoami');
    if (answer.status !== 200) throw (await import('./session.ts')).problemError(answer, 'whoami failed');
    const me = answer.body as { name: string; groups: string[]; capabilities: Record<string, boolean> };
    if (output !== 'text') return printStructured({ name: me.name, groups: me.groups, capabilities: me.capabilities }, output);
    const allowed = Object.entries(me.capabilities).filter(([, ok]) => ok).map(([k]) => k);
    process.stdout.write(`name:   ${me.name}\ngroups: ${me.groups.join(', ')}\nmay:    ${allowed.length > 0 ? allowed.join(', ') : '(nothing meshid checks)'}\n`);
  });

  const config = program.command('config').description("show or edit meshid's settings in the kubeconfig context, and kumactl-style control planes");
  registerControlPlaneCommands(config);
  config
    .command('get')
    .option('--show-token', 'print the whole ID token')
    .action(async (flags: { showToken?: boolean }, command: Command) => {
      const { connect } = await lazy();
      const conn = await connect(globalOptions(command));
      const ext = conn.extension;
      const shown = { context: conn.context, kubeconfig: conn.file, ...ext, ...(ext.token && !flags.showToken ? { token: redact(ext.token) } : {}) };
      const { output } = globalOptions(command);
      printStructured(shown, output === 'text' ? 'yaml' : output);
    });
  config
    .command('edit')
    .description('edit the meshid extension of the current context in $EDITOR')
    .action(async (_flags: unknown, command: Command) => {
      const { connect, readExtension, writeExtension, MeshidExtensionSchema } = await lazy();
      const conn = await connect(globalOptions(command));
      const dir = await mkdtemp(join(tmpdir(), 'meshid-config-'));
      const file = join(dir, 'meshid.yaml');
      try {
        await writeFile(file, stringify(await readExtension(conn.file, conn.context)), { mode: 0o600 });
        const editor = process.env['KUBE_EDITOR'] ?? process.env['EDITOR'] ?? 'vi';
        const { spawnSync } = await import('node:child_process');
        const status = spawnSync(editor, [file], { stdio: 'inherit', shell: true }).status;
        if (status !== 0) throw new MeshidError('ERR_INVALID_ARGUMENT', `${editor} exited with ${String(status)}; nothing changed`);
        const parsed = MeshidExtensionSchema.safeParse(parse(await readFile(file, 'utf8')) ?? {});
        if (!parsed.success) {
          throw new MeshidError('ERR_INVALID_ARGUMENT', `invalid meshid settings (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''}); nothing changed`);
        }
        const next: MeshidExtension = parsed.data;
        await writeExtension(conn.file, conn.context, Object.keys(next).length > 0 ? next : undefined);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

  withConnectFlags(program.command('dashboard').description("open the dashboard in a browser on a local proxy of its own (http://<random>.localhost:<port>), which reaches meshid through the apiserver's service proxy, a port-forward or --url"))
    .option('--no-browser', 'print the URL instead of opening a browser')
    .option('--port <port>', 'local port of the dashboard proxy (0: any free port)', '50500')
    .option('--port-forward', "reach meshid through a port-forward to one of its pods instead of the apiserver's service proxy")
    .action(async (flags: ConnectFlags & { browser: boolean; port: string; portForward?: boolean }, command: Command) => {
      const { runDashboard, parsePort } = await import('./dashboard.ts');
      await runDashboard(globalOptions(command), {
        url: flags.url,
        insecureSkipTlsVerify: flags.insecureSkipTlsVerify,
        portForward: flags.portForward,
        port: parsePort(flags.port),
        browser: flags.browser,
      });
    });
}
