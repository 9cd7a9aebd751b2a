import type { Command } from 'commander';
import { MeshidError } from '../core/index.ts';
import { durationFlag, durationText, readFlagFile } from './flags.ts';
import { globalOptions } from './globals.ts';
import { printStructured } from './output.ts';
import { operatorAudit } from './audit.ts';
import { DEFAULT_GRACE_MS, DEFAULT_PROPAGATION_MS } from '../ca/index.ts';

// Loaded when a command runs, so `--help` stays instant.
const lazy = async () => ({ ...(await import('../kube/index.ts')), ...(await import('../ca/index.ts')) });

export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('the workload CA: its root (Secret istio-ca-secret or cacerts) and trust bundle');

  ca.command('status')
    .description('mode, root fingerprint and expiry, trust bundle, rotation in progress')
    .action(async (_o: unknown, command: Command) => {
      const g = globalOptions(command);
      const { loadKubeConfig, caStatus } = await lazy();
      const status = await caStatus(loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context }), g.namespace);
      if (g.output !== 'text') return printStructured(status, g.output);
      const lines = [
        `mode:      ${status.mode}`,
        `root:      sha256:${status.rootFingerprint}`,
        `notAfter:  ${status.notAfter}`,
        `bundle:    ${status.trustBundle.map((r) => `sha256:${r.fingerprint.slice(0, 16)}… (to ${r.notAfter})`).join('\n           ')}`,
        ...(status.rotation?.newRootSignsAt ? [`rotation:  the new root signs from ${status.rotation.newRootSignsAt}`] : []),
        ...(status.rotation?.oldRootsDroppedAt ? [`rotation:  old roots leave the bundle at ${status.rotation.oldRootsDroppedAt}`] : []),
        ...(status.error ? [`error:     ${status.error}`] : []),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  ca.command('bundle')
    .description('print the trust bundle the CA publishes now (ConfigMap istio-ca-root-cert in the namespace): what workloads trust')
    .action(async (_o: unknown, command: Command) => {
      const g = globalOptions(command);
      const { loadKubeConfig, publishedBundle } = await lazy();
      const bundle = await publishedBundle(loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context }), g.namespace);
      if (g.output !== 'text') return printStructured(bundle, g.output);
      process.stdout.write(bundle.pem);
    });

  ca.command('rotate')
    .description('new self-signed root without restarts: bundle old+new, then new leaves, then drop the old root')
    .option('--propagation <duration>', 'how long the new root is trusted before it signs', durationText(DEFAULT_PROPAGATION_MS))
    .option('--grace <duration>', 'how long the old root stays trusted after the new one signs', durationText(DEFAULT_GRACE_MS))
    .action(async (flags: { propagation: string; grace: string }, command: Command) => {
      const g = globalOptions(command);
      const { loadKubeConfig, rotateCa } = await lazy();
      const kc = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context });
      const result = await rotateCa(kc, g.namespace, {
        propagationMs: await durationFlag('--propagation', flags.propagation),
        graceMs: await durationFlag('--grace', flags.grace),
        audit: await operatorAudit(kc, g.namespace),
      });
      if (g.output !== 'text') return printStructured(result, g.output);
      process.stderr.write(
        `New root sha256:${result.newRoot} is in the trust bundle now and signs from ${result.signsAt}; agents then renew every leaf. ` +
          `The old root leaves the bundle ${flags.grace} later. Follow it with \`meshid ca status\`.\n`,
      );
    });

  ca.command('set')
    .description('plug in a CA (Secret cacerts, as Istio): the old roots stay trusted for the grace period')
    .option('--cert-chain <file>', 'PEM: the signing certificate, its intermediates, then the root (Istio cert-chain.pem)')
    .option('--key <file>', "PEM: the signing certificate's private key")
    .option('--root <file>', 'PEM: the root certificate')
    .option('--ca-cert <file>', 'PEM: the signing certificate, when it is not the first of --cert-chain')
    .option('--grace <duration>', 'how long the roots trusted until now stay trusted', durationText(DEFAULT_GRACE_MS))
    .action(async (flags: { certChain?: string; key?: string; root?: string; caCert?: string; grace: string }, command: Command) => {
      const g = globalOptions(command);
      for (const flag of ['certChain', 'key', 'root'] as const) {
        if (!flags[flag]) throw new MeshidError('ERR_INVALID_ARGUMENT', `--${flag === 'certChain' ? 'cert-chain' : flag} is required`, { hint: 'meshid ca set --cert-chain cert-chain.pem --key ca-key.pem --root root-cert.pem' });
      }
      const { loadKubeConfig, plugCa } = await lazy();
      const kc = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context });
      const result = await plugCa(kc, g.namespace, {
        certChainPem: await readFlagFile('--cert-chain', flags.certChain ?? ''),
        keyPem: await readFlagFile('--key', flags.key ?? ''),
        rootCertPem: await readFlagFile('--root', flags.root ?? ''),
        ...(flags.caCert ? { caCertPem: await readFlagFile('--ca-cert', flags.caCert) } : {}),
        graceMs: await durationFlag('--grace', flags.grace),
        audit: await operatorAudit(kc, g.namespace),
      });
      if (g.output !== 'text') return printStructured(result, g.output);
      process.stderr.write(`Plugged in the CA with root sha256:${result.rootFingerprint}; agents renew every leaf from it now.\n`);
    });
}
