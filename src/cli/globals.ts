import type { Command } from 'commander';
import { parseOutputFormat, type OutputFormat } from './output.ts';

export const DEFAULT_NAMESPACE = 'meshid-system';

export interface GlobalOptions {
  kubeconfig: string | undefined;
  context: string | undefined;
  namespace: string;
  output: OutputFormat;
}

/** kubectl's global flags, on every command. */
export function addGlobalOptions(program: Command): Command {
  return program
    .option('--kubeconfig <path>', 'path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <name>', "meshid's namespace", DEFAULT_NAMESPACE)
    .option('-o, --output <format>', 'output format: json or yaml');
}

export function globalOptions(command: Command): GlobalOptions {
  const raw = command.optsWithGlobals<{ kubeconfig?: string; context?: string; namespace: string; output?: string }>();
  return {
    kubeconfig: raw.kubeconfig,
    context: raw.context,
    namespace: raw.namespace,
    output: parseOutputFormat(raw.output),
  };
}
