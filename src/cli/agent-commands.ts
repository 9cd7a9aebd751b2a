import type { Command } from 'commander';
import { MeshidError } from '../core/index.ts';
import { durationFlag } from './flags.ts';
import { globalOptions } from './globals.ts';

interface AgentFlags {
  socket: string;
  caAddress: string;
  caServerName?: string;
  trustDomain: string;
  keyType: string;
  certificateTtl: string;
  rootConfigMap: string;
  socketMode: string;
  dirMode: string;
}

const fileMode = (flag: string, text: string): number => {
  if (!/^0?[0-7]{3}$/.test(text)) throw new MeshidError('ERR_INVALID_ARGUMENT', `${flag} "${text}" is not an octal file mode such as 660`);
  return parseInt(text, 8);
};

export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the per-node SDS agent: Envoy SDS v3 on a Unix socket, certificates from the workload CA')
    .option('--socket <path>', 'Unix socket to serve SDS on', '/var/run/sds/uds_path')
    .option('--ca-address <host:port>', 'the workload CA', 'meshid.meshid-system.svc:15012')
    .option('--ca-server-name <name>', "name to check the CA's certificate against, when the address is an IP or alias")
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option('--key-type <type>', 'workload keys: ec (P-256) or rsa (2048)', 'ec')
    .option('--certificate-ttl <duration>', 'lifetime asked of the CA for workload certificates (renewed at about half of it)', '24h')
    .option('--root-config-map <name>', 'ConfigMap in -n NAMESPACE holding the trust bundle', 'istio-ca-root-cert')
    .option('--socket-mode <mode>', "the socket's file mode", '660')
    .option('--dir-mode <mode>', "mode of the socket's directory when the agent creates it", '750')
    .action(async (flags: AgentFlags, command: Command) => {
      const g = globalOptions(command);
      if (flags.keyType !== 'ec' && flags.keyType !== 'rsa') throw new MeshidError('ERR_INVALID_ARGUMENT', `--key-type "${flags.keyType}" is not ec or rsa`);
      // The CA takes whole seconds, and reads 0 as "your default" (24 h): refuse what would round to it.
      const ttlMs = await durationFlag('--certificate-ttl', flags.certificateTtl);
      if (ttlMs < 1000) throw new MeshidError('ERR_INVALID_ARGUMENT', `--certificate-ttl "${flags.certificateTtl}" is shorter than a second`);
      const { loadKubeConfig, CA_AUDIENCE } = await import('../kube/index.ts');
      const { startAgent } = await import('../agent/index.ts');
      const { createLogger } = await import('./logging.ts');
      const agent = await startAgent(
        loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context }),
        {
          socketPath: flags.socket,
          caAddress: flags.caAddress,
          ...(flags.caServerName ? { caServerName: flags.caServerName } : {}),
          namespace: g.namespace,
          rootConfigMap: flags.rootConfigMap,
          trustDomain: flags.trustDomain,
          keyType: flags.keyType,
          certificateTtlSeconds: Math.floor(ttlMs / 1000),
          audiences: [CA_AUDIENCE],
          socketMode: fileMode('--socket-mode', flags.socketMode),
          directoryMode: fileMode('--dir-mode', flags.dirMode),
        },
        createLogger('meshid-agent'),
      );
      await new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      await agent.stop();
    });
}
