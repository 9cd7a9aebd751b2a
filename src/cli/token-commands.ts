import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { MeshidError } from '../core/index.ts';
import { globalOptions, type GlobalOptions } from './globals.ts';
import { printStructured } from './output.ts';
import { kubernetesDecides, operatorAudit } from './audit.ts';

// Loaded when a command runs, so `--help` stays instant.
const lazy = async () => ({ ...(await import('../kube/index.ts')), ...(await import('../tokens/index.ts')) });

/** Signing keys and revocations live in Secrets: these commands act with the user's own RBAC. */
async function stores(g: GlobalOptions) {
  const { loadKubeConfig, KubeSigningKeys, KubeRevocations } = await lazy();
  const kc = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context });
  const { createLogger } = await import('./logging.ts');
  const log = createLogger('meshid', 'warn');
  return { kc, keys: new KubeSigningKeys(kc, g.namespace, log), revocations: new KubeRevocations(kc, g.namespace, log) };
}

const serialArg = (value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new MeshidError('ERR_INVALID_ARGUMENT', `"${value}" is not a key serial (a positive whole number)`);
  return n;
};

export function registerTokenCommands(program: Command): void {
  const keys = program.command('signing-keys').description('user-token signing keys (Secrets user-token-signing-key-<serial>)');
  keys
    .command('list')
    .description('serials and creation times; the highest serial signs, every key validates')
    .action(async (_o: unknown, command: Command) => {
      const g = globalOptions(command);
      const list = await (await stores(g)).keys.listStored();
      if (g.output !== 'text') return printStructured(list, g.output);
      const top = Math.max(0, ...list.map((k) => k.serial));
      process.stdout.write(['SERIAL  CREATED                   ROLE', ...list.map((k) => `${String(k.serial).padEnd(7)} ${(k.createdAt ?? '').padEnd(25)} ${k.serial === top ? 'signs and validates' : 'validates'}`)].join('\n') + '\n');
    });
  keys
    .command('rotate')
    .description('create a key with the next serial: new tokens use it, old ones stay valid until you remove their key')
    .action(async (_o: unknown, command: Command) => {
      const g = globalOptions(command);
      const { kc, keys } = await stores(g);
      const { rotateSigningKey } = await lazy();
      const { by, trail } = await operatorAudit(kc, g.namespace);
      const serial = await rotateSigningKey({ keys, audit: trail, authorize: kubernetesDecides }, by);
      if (g.output !== 'text') return printStructured({ serial }, g.output);
      process.stderr.write(`Created signing key ${serial}. New tokens carry kid "${serial}". Re-issue tokens, then remove the old key with \`meshid signing-keys remove <serial>\`.\n`);
    });
  keys
    .command('remove <serial>')
    .description('delete a key: every token it signed is refused at once')
    .action(async (serial: string, _o: unknown, command: Command) => {
      const g = globalOptions(command);
      const store = (await stores(g)).keys;
      const n = serialArg(serial);
      const all = await store.listStored();
      if (all.length === 1 && all[0]?.serial === n) {
        throw new MeshidError('ERR_INVALID_ARGUMENT', `signing key ${n} is the only one; removing it would leave nothing to sign with`, { hint: 'Run `meshid signing-keys rotate` first.' });
      }
      await store.remove(n);
      process.stderr.write(`Removed signing key ${n}; tokens it signed are refused.\n`);
    });
  keys
    .command('export <serial>')
    .description('print a private signing key (PEM), to copy it to another control plane')
    .action(async (serial: string, _o: unknown, command: Command) => {
      process.stdout.write((await (await stores(globalOptions(command))).keys.exportKey(serialArg(serial))).trim() + '\n');
    });
  keys
    .command('import <serial>')
    .description('store a private signing key (PEM, from `export` or `generate signing-key`) under a serial')
    .requiredOption('--file <path>', 'PEM file, or - for standard input')
    .action(async (serial: string, opts: { file: string }, command: Command) => {
      const pem = opts.file === '-' ? await readStdin() : await readFile(opts.file, 'utf8').catch((error: unknown) => {
        throw new MeshidError('ERR_INVALID_ARGUMENT', `cannot read ${opts.file}`, { cause: error });
      });
      await (await stores(globalOptions(command))).keys.importKey(serialArg(serial), pem);
      process.stderr.write(`Imported signing key ${serial}.\n`);
    });

  const tokens = program.command('tokens').description('user tokens');
  tokens
    .command('revoke <jti...>')
    .description('add token ids (jti claims: 1 to 256 printable ASCII characters, no spaces) to Secret user-token-revocations; every replica refuses them within seconds')
    .action(async (jtis: string[], _o: unknown, command: Command) => {
      const { checkTokenId, revokeUserTokens } = await lazy();
      // Checked before anything reaches the cluster (the kubeconfig may well be wrong too).
      jtis.forEach(checkTokenId);
      const g = globalOptions(command);
      const { kc, revocations } = await stores(g);
      const { by, trail } = await operatorAudit(kc, g.namespace);
      await revokeUserTokens({ revocations, audit: trail, authorize: kubernetesDecides }, by, jtis);
      process.stderr.write(`Revoked ${jtis.length} token${jtis.length === 1 ? '' : 's'}.\n`);
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
