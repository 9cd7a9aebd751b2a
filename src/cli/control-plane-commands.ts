import type { Command } from 'commander';
import { globalOptions } from './globals.ts';
import { printStructured } from './output.ts';

// The store pulls in zod and the YAML parser; load it only when a command runs, so `--help` stays instant.
const lazy = async () => import('./control-planes.ts');

interface AddFlags {
  name?: string;
  address?: string;
  authType?: string;
  authConf?: string[];
  caCertFile?: string;
  skipVerify?: boolean;
  clientCertFile?: string;
  clientKeyFile?: string;
  overwrite?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/**
 * `meshid config control-planes …`, kumactl's way to reach a control plane with a user token
 * and no kubeconfig. While one is current, commands use it unless --kubeconfig, --context or
 * --url is given.
 */
export function registerControlPlaneCommands(configCommand: Command): void {
  const controlPlanes = configCommand
    .command('control-planes')
    .description('control planes reached with a user token instead of a kubeconfig (as kumactl does); --kubeconfig, --context or --url override the current one');

  controlPlanes
    .command('add')
    .description('add a control plane and make it the current one')
    .option('--name <name>', 'name of the control plane (required)')
    .option('--address <url>', "meshid's API address, e.g. https://HOST:5682 or http://HOST:5681 (required)")
    .option('--auth-type <type>', 'how to authenticate: tokens (required)')
    // No default value: commander would print "(default: [])" in --help.
    .option('--auth-conf <key=value>', 'authentication settings: token=TOKEN (a user token)', collect)
    .option('--ca-cert-file <path>', "CA certificate (PEM) that signs the server's certificate")
    .option('--skip-verify', "do not check the server's certificate")
    .option('--client-cert-file <path>', 'client certificate (PEM), with --client-key-file')
    .option('--client-key-file <path>', 'client private key (PEM), with --client-cert-file')
    .option('--overwrite', 'replace a control plane of the same name')
    .action(async (flags: AddFlags) => {
      const { controlPlaneFromFlags, readControlPlanes, addControlPlane, writeControlPlanes, controlPlanesFile } = await lazy();
      const controlPlane = await controlPlaneFromFlags(flags);
      const file = controlPlanesFile();
      await writeControlPlanes(addControlPlane(await readControlPlanes(file), controlPlane, { overwrite: flags.overwrite }), file);
      process.stderr.write(`Added control plane "${controlPlane.name}" (${controlPlane.address}) to ${file}; it is now the current one.\n`);
    });

  controlPlanes
    .command('list')
    .description('list the control planes; tokens are never shown')
    .action(async (_flags: unknown, command: Command) => {
      const { output } = globalOptions(command);
      const { readControlPlanes, listControlPlanes } = await lazy();
      const config = await readControlPlanes();
      const views = listControlPlanes(config);
      if (output !== 'text') return printStructured({ currentControlPlane: config.currentControlPlane ?? null, controlPlanes: views }, output);
      if (views.length === 0) {
        process.stderr.write('No control planes; meshid uses the kubeconfig. Add one with `meshid config control-planes add`.\n');
        return;
      }
      const rows = [['CURRENT', 'NAME', 'ADDRESS', 'AUTH'], ...views.map((v) => [v.current ? '*' : '', v.name, v.address, v.authType])];
      const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
      for (const row of rows) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
    });

  controlPlanes
    .command('use')
    .description('make a control plane the current one')
    .argument('<name>', 'name of the control plane')
    .action(async (name: string) => {
      const { readControlPlanes, useControlPlane, writeControlPlanes, controlPlanesFile } = await lazy();
      const file = controlPlanesFile();
      await writeControlPlanes(useControlPlane(await readControlPlanes(file), name), file);
      process.stderr.write(`Switched to control plane "${name}".\n`);
    });

  controlPlanes
    .command('remove')
    .description('forget a control plane and its token')
    .argument('<name>', 'name of the control plane')
    .action(async (name: string) => {
      const { readControlPlanes, removeControlPlane, writeControlPlanes, controlPlanesFile } = await lazy();
      const file = controlPlanesFile();
      const before = await readControlPlanes(file);
      await writeControlPlanes(removeControlPlane(before, name), file);
      const wasCurrent = before.currentControlPlane === name;
      process.stderr.write(`Removed control plane "${name}".${wasCurrent ? ' No control plane is current: meshid uses the kubeconfig again.' : ''}\n`);
    });
}
