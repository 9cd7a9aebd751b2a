import type { Command } from 'commander';
import { MeshidError } from '../core/index.ts';
import type { Playground } from '../playground/index.ts';
import { globalOptions } from './globals.ts';
import { printStructured } from './output.ts';

/** Mirrors the playground's default; kept here so `--help` loads no cluster code. */
const DEFAULT_DIR = '.meshid';

export function registerPlaygroundCommands(program: Command): void {
  program
    .command('up')
    .description('start the local playground: a real etcd and kube-apiserver, with meshid and sample users')
    .option('--dir <dir>', 'where the playground keeps its keys, data and logs', DEFAULT_DIR)
    .option('--detach', 'return once it is ready, leaving it running (stop it with `meshid down`)')
    .option('--node', 'require a real node, with meshid and the demo as pods (default: when root on Linux)')
    .option('--no-node', 'run meshid as host processes, without a node')
    .action(async (opts: { dir: string; detach?: boolean; node?: boolean }, command: Command) => {
      const { output } = globalOptions(command);
      const { startPlayground } = await import('../playground/index.ts');
      const { terminalProgress } = await import('./logging.ts');
      const playground = await startPlayground({ dir: opts.dir, detach: opts.detach ?? false, progress: terminalProgress(), ...(opts.node === undefined ? {} : { node: opts.node }) });
      if (output === 'text') printNextSteps(playground, opts.detach ?? false);
      else printStructured(playground.env, output);
      if (!opts.detach) await runUntilStopped(playground);
    });

  program
    .command('down')
    .description('stop a playground started with `meshid up`')
    .option('--dir <dir>', 'the directory `meshid up` used', DEFAULT_DIR)
    .action(async (opts: { dir: string }) => {
      const { stopPlayground } = await import('../playground/index.ts');
      const { terminalProgress } = await import('./logging.ts');
      await stopPlayground(opts.dir, terminalProgress());
    });

  const playground = program.command('playground', { hidden: true }).description('helpers used by the playground itself');
  playground
    .command('credential')
    .description('client-go exec credential plugin for the playground user carol')
    .requiredOption('--token-file <path>', 'file holding the token to hand out')
    .action(async (opts: { tokenFile: string }) => {
      // kubectl runs this for every call: load only what the plugin needs.
      const { execCredential } = await import('../plugin/index.ts');
      process.stdout.write((await execCredential(opts.tokenFile)) + '\n');
    });
  registerWorkloadCommand(playground);
}

function registerWorkloadCommand(playground: Command): void {
  playground
    .command('workload')
    .description("a demo workload (Istio's sleep or httpbin) that gets its certificates from the SDS agent")
    .requiredOption('--role <role>', 'sleep or httpbin')
    .requiredOption('--socket <path>', "the agent's SDS socket")
    .requiredOption('--token-file <path>', 'its projected service-account token')
    .option('--trust-domain <domain>', 'SPIFFE trust domain (default cluster.local)')
    .option('--port <port>', 'httpbin: mTLS port; sleep: control port', '0')
    .option('--address <ip>', "httpbin's listen address (sleep's control port stays on loopback)", '127.0.0.1')
    .action(async (opts: { role: string; socket: string; tokenFile: string; trustDomain?: string; port: string; address: string }, command: Command) => {
      const namespace = globalOptions(command).namespace;
      if (opts.role !== 'sleep' && opts.role !== 'httpbin') throw new MeshidError('ERR_INVALID_ARGUMENT', `--role "${opts.role}" is not sleep or httpbin`);
      const { runWorkload } = await import('../playground/index.ts');
      const running = await runWorkload({ role: opts.role, namespace, socket: opts.socket, tokenFile: opts.tokenFile, ...(opts.trustDomain ? { trustDomain: opts.trustDomain } : {}), port: Number(opts.port), address: opts.address });
      process.stderr.write(`${opts.role}.${namespace} ready on port ${running.port}\n`);
      await new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      running.close();
    });
}

function printNextSteps(playground: Playground, detached: boolean): void {
  const { env, dir } = playground;
  const lines = [
    '',
    `The playground is up. Its API server: ${env.apiServer}`,
    `Everything about it is in ${dir}/env.json. Try, as each sample user (any kubectl works;`,
    `this one was built with the cluster):`,
    `  alias kubectl=${env.kubectl}`,
    `  kubectl --kubeconfig ${env.kubeconfigs.admin} get namespaces      # admin: system:masters`,
    `  kubectl --kubeconfig ${env.kubeconfigs.alice} -n dev get pods     # alice: client cert, reads pods in dev only`,
    `  kubectl --kubeconfig ${env.kubeconfigs.bob} auth can-i --list     # bob: static token, views everything`,
    `  kubectl --kubeconfig ${env.kubeconfigs.carol} -n dev get pods     # carol: exec credential plugin`,
    '',
    ...(env.node ? [`meshid runs as pods on node ${env.node.name} (${env.node.ip}):`, `  kubectl --kubeconfig ${env.kubeconfigs.admin} -n meshid-system get pods -o wide`, ''] : []),
    `meshid runs at ${env.server.https} (and ${env.server.http}). Log in with a kubeconfig, nothing else:`,
    `  meshid --kubeconfig ${env.kubeconfigs.alice} login`,
    `  meshid --kubeconfig ${env.kubeconfigs.alice} whoami`,
    `  meshid --kubeconfig ${env.kubeconfigs.bob} dashboard --no-browser`,
    '',
    detached ? `Stop it with: meshid down --dir ${dir}` : 'Press Ctrl-C to stop it.',
    '',
  ];
  process.stderr.write(lines.join('\n'));
}

/** Foreground `up`: Ctrl-C (or SIGTERM) stops every process; a peer that dies stops the rest. */
async function runUntilStopped(playground: Playground): Promise<void> {
  const died = Promise.race(playground.processes.map((p) => p.exited.then((how) => `${p.name} exited (${how})`)));
  const signalled = new Promise<string>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => resolve(sig));
  });
  const reason = await Promise.race([died, signalled]);
  process.stderr.write(`\nStopping the playground (${reason})…\n`);
  await playground.stop();
  if (!reason.startsWith('SIG')) process.exitCode = 1;
}
