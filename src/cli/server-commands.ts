import type { Command } from 'commander';
import { stringify } from 'yaml';
import { MESHID_VERSION, environmentLayer, mergeConfig, type ConfigLayer, type EnvSetting } from '../core/index.ts';
import { configFile, givenFlags } from './config-input.ts';

// Commands load Kubernetes and server code only when they run, so `--help` stays instant.
const lazy = async () => ({ ...(await import('./logging.ts')), ...(await import('../kube/index.ts')), ...(await import('../install/index.ts')), ...(await import('../server/index.ts')) });
import { globalOptions } from './globals.ts';
import { printStructured } from './output.ts';

const int = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`not a whole number: ${value}`);
  return n;
};

/** Flags of `meshid server` and of the global ones, by commander's attribute name, with the setting each sets. */
const SERVER_FLAGS: Readonly<Record<string, string>> = {
  namespace: 'namespace',
  kubeconfig: 'kubeconfig',
  context: 'context',
  host: 'host',
  httpPort: 'httpPort',
  httpsPort: 'httpsPort',
  tlsCertFile: 'tlsCertFile',
  tlsKeyFile: 'tlsKeyFile',
  anonymousAuth: 'anonymousAuth',
  ca: 'ca.enabled',
  caPort: 'ca.port',
};

/** What `meshid server` starts with: --config file < MESHID_* environment < flags given; the schema adds defaults. */
export async function serverConfigInput(command: Command, env: NodeJS.ProcessEnv, environment: Readonly<Record<string, EnvSetting>>): Promise<ConfigLayer> {
  return mergeConfig(await configFile(command), environmentLayer(env, environment), givenFlags(command, SERVER_FLAGS));
}

/** After the pod's preStop sleep: long enough for every busy keep-alive client to be told to reconnect. */
const SIGTERM_DRAIN_MS = 3_000;

export function registerServerCommands(program: Command): void {
  program
    .command('server')
    .description('run the meshid server (HTTP 5681, HTTPS 5682); in a pod it uses in-cluster config')
    .option('--host <address>', 'address to listen on (default 0.0.0.0)')
    .option('--http-port <port>', 'HTTP port', int)
    .option('--https-port <port>', 'HTTPS port', int)
    .option('--tls-cert-file <path>', 'serving certificate (PEM); self-signed when absent')
    .option('--tls-key-file <path>', 'serving key (PEM)')
    .option('--anonymous-auth', 'turn login off: every caller acts as system:anonymous (RBAC decides what that may do)')
    .option('--ca', 'also run the workload CA (gRPC CreateCertificate over TLS)')
    .option('--ca-port <port>', 'workload CA port', int)
    .option('--config <file>', 'YAML server settings (e.g. userTokens.enableIssuer, userTokens.validator.publicKeys); MESHID_* variables override it, flags given override both')
    .action(async (_flags: unknown, command: Command) => {
      const { startServer, createLogger, SERVER_ENVIRONMENT } = await lazy();
      const server = await startServer(await serverConfigInput(command, process.env, SERVER_ENVIRONMENT), { log: createLogger('meshid-server') });
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(sig));
      });
      // SIGTERM is how the kubelet stops a pod: drain, so no client of the Service sees an
      // error (see RunningServer.close). Ctrl-C stops at once.
      await server.close(signal === 'SIGTERM' ? { drainMs: SIGTERM_DRAIN_MS } : {});
    });

  program
    .command('install')
    .description('install meshid into the cluster of the current context (idempotent)')
    .option('--anonymous-auth', 'install with login turned off')
    .option('--dry-run', 'print what would be applied, change nothing')
    // The image `npm run image` builds from this version; `latest` would drift from the CLI.
    .option('--image <image>', 'server and agent image', `meshid:${MESHID_VERSION}`)
    .option('--replicas <n>', 'server replicas', int, 2)
    .option('--tls-secret <name>', "a kubernetes.io/tls Secret in meshid's namespace with the server's HTTPS certificate (default: each replica signs its own)")
    .action(async (flags: { anonymousAuth?: boolean; dryRun?: boolean; image: string; replicas: number; tlsSecret?: string }, command: Command) => {
      const g = globalOptions(command);
      const { install, installManifests, loadKubeConfig, terminalProgress } = await lazy();
      const options = { namespace: g.namespace, anonymousAuth: flags.anonymousAuth ?? false, image: flags.image, replicas: flags.replicas, ...(flags.tlsSecret ? { tlsSecret: flags.tlsSecret } : {}) };
      if (flags.dryRun) {
        const objects = installManifests(options);
        if (g.output === 'json') printStructured({ apiVersion: 'v1', kind: 'List', items: objects }, 'json');
        else if (g.output === 'yaml') process.stdout.write(objects.map((o) => stringify(o)).join('---\n'));
        else for (const o of objects) process.stdout.write(`${o.kind ?? ''}/${o.metadata?.name ?? ''} (dry run)\n`);
        return;
      }
      await install(loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context }), options, terminalProgress());
    });

  program
    .command('uninstall')
    .description('remove meshid from the cluster; keys stay unless --purge')
    .option('--purge', 'also delete the namespace and every key meshid holds')
    .action(async (flags: { purge?: boolean }, command: Command) => {
      const g = globalOptions(command);
      const { uninstall, loadKubeConfig, terminalProgress } = await lazy();
      await uninstall(loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context }), { namespace: g.namespace, purge: flags.purge ?? false }, terminalProgress());
    });
}
