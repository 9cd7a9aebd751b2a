import type { Command } from 'commander';
import { MeshidError, environmentLayer, mergeConfig, type ConfigLayer, type EnvSetting } from '../core/index.ts';
import { configFile, givenFlags } from './config-input.ts';
import { durationFlag } from './flags.ts';

const fileMode = (flag: string, text: string): number => {
  if (!/^0?[0-7]{3}$/.test(text)) throw new MeshidError('ERR_INVALID_ARGUMENT', `${flag} "${text}" is not an octal file mode such as 660`);
  return parseInt(text, 8);
};

/** Flags of `meshid agent` taken as they are, by commander's attribute name, with the setting each sets. */
const AGENT_FLAGS: Readonly<Record<string, string>> = {
  namespace: 'namespace',
  kubeconfig: 'kubeconfig',
  context: 'context',
  socket: 'socketPath',
  caAddress: 'caAddress',
  caServerName: 'caServerName',
  trustDomain: 'trustDomain',
  keyType: 'keyType',
  rootConfigMap: 'rootConfigMap',
};

/** The flags given whose text needs reading first; errors name the flag, before anything loads. */
async function convertedFlags(command: Command): Promise<ConfigLayer> {
  const given = givenFlags(command, { certificateTtl: 'certificateTtl', socketMode: 'socketMode', dirMode: 'dirMode' }) as Record<string, string | undefined>;
  const layer: ConfigLayer = {};
  if (given['certificateTtl'] !== undefined) {
    // The CA takes whole seconds, and reads 0 as "your default" (24 h): refuse what would round to it.
    const ttlMs = await durationFlag('--certificate-ttl', given['certificateTtl']);
    if (ttlMs < 1000) throw new MeshidError('ERR_INVALID_ARGUMENT', `--certificate-ttl "${given['certificateTtl']}" is shorter than a second`);
    layer['certificateTtlSeconds'] = Math.floor(ttlMs / 1000);
  }
  if (given['socketMode'] !== undefined) layer['socketMode'] = fileMode('--socket-mode', given['socketMode']);
  if (given['dirMode'] !== undefined) layer['directoryMode'] = fileMode('--dir-mode', given['dirMode']);
  return layer;
}

/** What `meshid agent` starts with: --config file < MESHID_* environment < flags given; the schema adds defaults. */
export async function agentConfigInput(command: Command, env: NodeJS.ProcessEnv, environment: Readonly<Record<string, EnvSetting>>): Promise<ConfigLayer> {
  const flags = mergeConfig(givenFlags(command, AGENT_FLAGS), await convertedFlags(command));
  return mergeConfig(await configFile(command), environmentLayer(env, environment), flags);
}

export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the per-node SDS agent: Envoy SDS v3 on a Unix socket, certificates from the workload CA')
    .option('--socket <path>', 'Unix socket to serve SDS on (default /var/run/sds/uds_path)')
    .option('--ca-address <host:port>', 'the workload CA (default: the meshid Service in meshid-system, on the CA port)')
    .option('--ca-server-name <name>', "name to check the CA's certificate against, when the address is an IP or alias")
    .option('--trust-domain <domain>', 'SPIFFE trust domain (default cluster.local)')
    .option('--key-type <type>', 'workload keys: ec (P-256, the default) or rsa (2048)')
    .option('--certificate-ttl <duration>', 'lifetime asked of the CA for workload certificates, renewed at about half of it (default 24h)')
    .option('--root-config-map <name>', 'ConfigMap in -n NAMESPACE holding the trust bundle (default: the one the CA publishes)')
    .option('--socket-mode <mode>', "the socket's file mode (default 660)")
    .option('--dir-mode <mode>', "mode of the socket's directory when the agent creates it (default 750)")
    .option('--config <file>', 'YAML agent settings (the keys of AgentConfigSchema); MESHID_* variables override it, flags given override both')
    .action(async (_flags: unknown, command: Command) => {
      const { AGENT_ENVIRONMENT, parseAgentConfig, startAgent } = await import('../agent/index.ts');
      const { kubeconfig, context, ...settings } = parseAgentConfig(await agentConfigInput(command, process.env, AGENT_ENVIRONMENT));
      const { loadKubeConfig } = await import('../kube/index.ts');
      const { createLogger } = await import('./logging.ts');
      const agent = await startAgent(loadKubeConfig({ kubeconfig, context }), settings, createLogger('meshid-agent'));
      await new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      await agent.stop();
    });
}
