import type { Command } from 'commander';
import { MeshidError } from '../core/index.ts';
import { RECOVERY_CA_GRACE_MS, RECOVERY_CA_PROPAGATION_MS } from '../recovery/index.ts';
import { durationFlag, durationText, readFlagFile } from './flags.ts';
import { globalOptions, type GlobalOptions } from './globals.ts';
import { printStructured } from './output.ts';
import { auditAsOperator } from './audit.ts';

// Loaded when a command runs, so `--help` stays instant.
const lazy = async () => ({
  ...(await import('../kube/index.ts')),
  ...(await import('../recovery/index.ts')),
  ...(await import('../tokens/index.ts')),
  ...(await import('../contract/index.ts')),
  ...(await import('./connect.ts')),
});

interface RecoverFlags {
  dryRun?: boolean;
  yes?: boolean;
  meshNamespaces?: string;
  meshLabel?: string;
  registryNamespace: string;
  rootConfigmap?: string;
  caPropagation: string;
  caGrace: string;
  restartWorkloads?: boolean;
  certChain?: string;
  key?: string;
  root?: string;
  caCert?: string;
  reissueAdminToken: boolean;
  rolloutTimeout: string;
  verifyTimeout: string;
  url?: string;
  insecureSkipTlsVerify?: boolean;
}



/**
 * The meshid server for the checks only it can answer, reached the way `meshid login`
 * reaches it. Asked once up front; unreachable means those checks are skipped, not failed.
 */
async function serverProbe(g: GlobalOptions, flags: RecoverFlags) {
  const { connect } = await lazy();
  const conn = await connect(g, { url: flags.url, insecureSkipTlsVerify: flags.insecureSkipTlsVerify });
  const describe = conn.mode === 'url' ? conn.base.origin : `the apiserver's service proxy to meshid in ${g.namespace}`;
  const probe = {
    describe,
    async whoami(token: string): Promise<number> {
      const answer = await conn.send('GET', '/api/whoami', { sessionToken: token });
      // A proxy's 5xx says nothing about the token.
      if (answer.status >= 500) throw new Error(`answered ${answer.status}`);
      return answer.status;
    },
  };
  try {
    const health = await conn.send('GET', '/healthz');
    if (health.status !== 200) return { probe: undefined, why: `${describe} answered ${health.status} to /healthz` };
  } catch (error) {
    return { probe: undefined, why: `${describe} is not reachable (${(error as Error).message})` };
  }
  return { probe, why: undefined };
}

async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function registerRecoverCommands(program: Command): void {
  program
    .command('recover <step>')
    .description('change and revoke every key after a compromise: service-account-tokens, jwt-key, signing-key, ca, registry, or all (in that order), then verify')
    .option('--dry-run', 'print the plan and change nothing')
    .option('-y, --yes', 'act without asking')
    .option('--mesh-namespaces <a,b>', "the mesh namespaces (default: meshid's namespace, meshid-registry-access, istio-system, cert-manager)")
    .option('--mesh-label <selector>', 'namespaces with this label are mesh namespaces too (default meshid.io/mesh=enabled; "" for none)')
    .option('--registry-namespace <name>', 'where the registry credentials are kept', 'meshid-registry-access')
    .option('--root-configmap <name>', 'the ConfigMap the CA publishes its trust bundle in (default istio-ca-root-cert, as Istio)')
    .option('--ca-propagation <duration>', 'ca: how long the new root is trusted before it signs (agents fetch it first)', durationText(RECOVERY_CA_PROPAGATION_MS))
    .option('--ca-grace <duration>', 'ca: how long the old roots stay trusted after the switch; keep it short, they are compromised', durationText(RECOVERY_CA_GRACE_MS))
    .option('--restart-workloads', 'ca: also restart the workloads, for those that do not get certificates over SDS')
    .option('--cert-chain <file>', 'ca, plugged-in CA: PEM of the new signing certificate, intermediates, then root')
    .option('--key <file>', "ca, plugged-in CA: PEM of the new signing certificate's key")
    .option('--root <file>', 'ca, plugged-in CA: PEM of the new root')
    .option('--ca-cert <file>', 'ca, plugged-in CA: the signing certificate, when it is not first in --cert-chain')
    .option('--no-reissue-admin-token', 'signing-key: do not re-issue Secret admin-user-token with the new key')
    .option('--rollout-timeout <duration>', 'how long to wait for restarted pods before reporting those not back', '2m')
    .option('--verify-timeout <duration>', 'how long each check waits for caches and watches to catch up', '30s')
    .option('--url <url>', "meshid's address for the checks against the server (default: as `meshid login` finds it)")
    .option('--insecure-skip-tls-verify', "do not check meshid's serving certificate (with --url)")
    .addHelpText(
      'after',
      '\nWithout --yes it prints the plan and asks (on a terminal), or exits non-zero (without one).\n' +
        'Each step is recorded in ConfigMap meshid-recovery: running the same command again after an interruption resumes it.',
    )
    .action(async (stepArg: string, flags: RecoverFlags, command: Command) => {
      const g = globalOptions(command);
      const { ROOT_CONFIGMAP, loadKubeConfig, parseSteps, meshScope, parseNamespaceList, planRecovery, runRecovery, renderPlan, renderReport } = await lazy();
      const steps = parseSteps(stepArg);
      const given = [flags.certChain, flags.key, flags.root].filter((f) => f !== undefined).length;
      if (given !== 0 && given !== 3) throw new MeshidError('ERR_INVALID_ARGUMENT', '--cert-chain, --key and --root go together', { hint: 'Pass all three to plug in a new CA, or none to rotate the self-signed root.' });
      const options = {
        meshidNamespace: g.namespace,
        registryNamespace: flags.registryNamespace,
        rootConfigMap: flags.rootConfigmap ?? ROOT_CONFIGMAP,
        scope: meshScope({
          meshidNamespace: g.namespace,
          registryNamespace: flags.registryNamespace,
          namespaces: flags.meshNamespaces === undefined ? undefined : parseNamespaceList(flags.meshNamespaces),
          label: flags.meshLabel,
        }),
        steps,
        ca: {
          propagationMs: await durationFlag('--ca-propagation', flags.caPropagation),
          graceMs: await durationFlag('--ca-grace', flags.caGrace),
          restartWorkloads: flags.restartWorkloads ?? false,
          ...(given === 3
            ? {
                plugged: {
                  certChainPem: await readFlagFile('--cert-chain', flags.certChain ?? ''),
                  keyPem: await readFlagFile('--key', flags.key ?? ''),
                  rootCertPem: await readFlagFile('--root', flags.root ?? ''),
                  ...(flags.caCert ? { caCertPem: await readFlagFile('--ca-cert', flags.caCert) } : {}),
                },
              }
            : {}),
        },
        reissueAdminToken: flags.reissueAdminToken,
        rolloutTimeoutMs: await durationFlag('--rollout-timeout', flags.rolloutTimeout),
        verifyTimeoutMs: await durationFlag('--verify-timeout', flags.verifyTimeout),
      };
      const kc = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context });
      const { plan, inventory } = await planRecovery(kc, options);
      const dryRun = flags.dryRun ?? false;

      if (dryRun) {
        if (g.output !== 'text') printStructured(plan, g.output);
        else process.stdout.write(renderPlan(plan, { dryRun: true }));
        return;
      }
      const blocked = plan.steps.find((s) => s.blocked);
      if (!flags.yes) {
        const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
        if (!interactive || blocked) {
          if (g.output !== 'text') printStructured(plan, g.output);
          else process.stdout.write(renderPlan(plan, { dryRun: false }));
        }
        if (blocked) throw new MeshidError('ERR_INVALID_ARGUMENT', `step ${blocked.step} cannot run: ${blocked.blocked ?? ''}`);
        if (!interactive) {
          throw new MeshidError('ERR_CONFIRMATION_REQUIRED', 'nothing was changed: recovery acts only when told to', { hint: 'Read the plan above, then run the same command with --yes (or --dry-run to only see the plan).' });
        }
        process.stderr.write(renderPlan(plan, { dryRun: false }));
        if (!(await confirm('Carry out this plan? [y/N] '))) {
          process.stderr.write('Nothing was changed.\n');
          process.exitCode = 1;
          return;
        }
      } else if (blocked) {
        throw new MeshidError('ERR_INVALID_ARGUMENT', `step ${blocked.step} cannot run: ${blocked.blocked ?? ''}`);
      } else {
        process.stderr.write(renderPlan(plan, { dryRun: false }));
      }

      const { probe, why } = await serverProbe(g, flags).catch((error: unknown) => ({ probe: undefined, why: (error as Error).message }));
      if (why) process.stderr.write(`note: the checks against the meshid server will be skipped: ${why}; pass --url to reach it\n`);
      const { terminalProgress } = await import('./logging.ts');
      const report = await runRecovery(kc, options, inventory, { progress: terminalProgress(), probe });
      const outcome = report.ok ? 'verified' : report.steps.some((st) => st.status === 'failed') ? 'failed' : 'unverified';
      await auditAsOperator(kc, g.namespace, 'RecoveryRun', `recovery ${report.id} (${options.steps.join(', ')}) ${outcome} in ${(report.durationMs / 1000).toFixed(1)} s`);
      if (g.output !== 'text') printStructured(report, g.output);
      else process.stdout.write(renderReport(report));
      const failedStep = report.steps.find((s) => s.status === 'failed');
      if (failedStep) {
        throw new MeshidError('ERR_RECOVERY_FAILED', `step ${failedStep.step} failed: ${failedStep.error?.message ?? ''}`, {
          hint: failedStep.error?.hint ?? 'Fix the cause, then run the same command again: it resumes where it stopped.',
        });
      }
      if (!report.ok) {
        const bad = report.verification.checks.filter((c) => c.status === 'failed');
        throw new MeshidError('ERR_RECOVERY_UNVERIFIED', `${bad.length} check${bad.length === 1 ? '' : 's'} failed: ${bad.map((c) => `${c.step}: ${c.check}`).join('; ')}`, {
          hint: 'See the report above; run the failing step again with `meshid recover <step> --yes`.',
        });
      }
    });
}
