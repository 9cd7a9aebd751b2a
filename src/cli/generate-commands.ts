import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { MeshidError, isMeshidError } from '../core/index.ts';

// The token code pulls in the Kubernetes client through its index; load it only when a
// command runs, so `--help` stays instant.
const lazy = async () => import('../tokens/index.ts');

/** What `generate user-token` sends to the server when it has no key to sign with. */
export interface OnlineUserTokenRequest {
  name: string;
  groups: string[];
  /** As typed (`24h`), like Kuma's `POST /tokens/user` body; the server parses it again. */
  validFor: string;
}

export type OnlineUserTokenIssuer = (request: OnlineUserTokenRequest, command: Command) => Promise<string>;

interface UserTokenFlags {
  name?: string;
  group?: string[];
  validFor?: string;
  signingKeyPath?: string;
  kid?: string;
}

const KEY_HINT = 'Make a key pair with `meshid generate signing-key --format pem > key.pem`, then `meshid generate public-key --signing-key-path key.pem`.';

/** Reads and parses a private key file; every failure names the file, since that is what the user can fix. */
async function readSigningKey(path: string) {
  const { parsePrivateKey } = await lazy();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `cannot read signing key ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error, hint: KEY_HINT });
  }
  try {
    return parsePrivateKey(text);
  } catch (error) {
    if (!isMeshidError(error)) throw error;
    throw new MeshidError(error.code, `${path}: ${error.message}`, { cause: error, hint: error.hint ?? KEY_HINT });
  }
}

/**
 * kumactl's offline issuing (`generate signing-key`, `public-key`, `user-token`): a key
 * pair and tokens made without a control plane. `online` issues through the server when
 * `user-token` gets no `--signing-key-path`; the caller owns the connection, so it is passed in.
 */
export function registerGenerateCommands(program: Command, online?: OnlineUserTokenIssuer): void {
  const generate = program.command('generate').description('generate signing keys and user tokens, offline or through the server');

  generate
    .command('signing-key')
    .description('print a new 2048-bit RSA signing key (PKCS#1)')
    .option('--format <format>', 'pem, or pem-base64 (ready for a Secret\'s data)', 'pem-base64')
    .action(async (flags: { format: string }) => {
      if (flags.format !== 'pem' && flags.format !== 'pem-base64') {
        throw new MeshidError('ERR_INVALID_ARGUMENT', `unknown key format "${flags.format}"`, { hint: 'Use --format pem or --format pem-base64.' });
      }
      const { generateSigningKeyPem, encodeKey } = await lazy();
      const key = encodeKey(generateSigningKeyPem(), flags.format);
      process.stdout.write(key.endsWith('\n') ? key : `${key}\n`);
    });

  generate
    .command('public-key')
    .description('print the public key (PKCS#1 "RSA PUBLIC KEY" PEM) of a signing key, for the server\'s static keys')
    .option('--signing-key-path <path>', 'file with the private signing key (PEM, or base64 of PEM)')
    .action(async (flags: { signingKeyPath?: string }) => {
      if (!flags.signingKeyPath) throw new MeshidError('ERR_INVALID_ARGUMENT', '--signing-key-path is required', { hint: KEY_HINT });
      const privateKey = await readSigningKey(flags.signingKeyPath);
      const { publicKeyPem } = await lazy();
      process.stdout.write(publicKeyPem(privateKey));
    });

  generate
    .command('user-token')
    .description('print a user token: signed offline with --signing-key-path and --kid, otherwise issued by the server')
    .option('--name <name>', 'name of the user (required)')
    // No default value: commander would print "(default: [])" in --help.
    .option('--group <group>', 'group of the user (repeat for more)', (value: string, previous: string[] | undefined) => [...(previous ?? []), value])
    .option('--valid-for <duration>', 'how long the token is valid, e.g. 24h, 30m, 1h30m (required)')
    .option('--signing-key-path <path>', 'sign offline with this private key (PEM, or base64 of PEM)')
    .option('--kid <kid>', 'key ID the server knows the public key by (required with --signing-key-path)')
    .action(async (flags: UserTokenFlags, command: Command) => {
      if (!flags.name) throw new MeshidError('ERR_INVALID_ARGUMENT', '--name is required');
      if (!flags.validFor) throw new MeshidError('ERR_INVALID_ARGUMENT', '--valid-for is required', { hint: 'For example --valid-for 24h.' });
      const { parseDuration, signUserToken } = await lazy();
      // Parsed here even for the server, so a typo fails before any network call.
      const validForMs = parseDuration(flags.validFor);
      if (!(validForMs > 0) || !Number.isFinite(validForMs)) {
        throw new MeshidError('ERR_INVALID_ARGUMENT', `--valid-for ${flags.validFor} is not a positive, finite duration`, { hint: 'For example --valid-for 24h.' });
      }

      if (!flags.signingKeyPath) {
        // The server picks its own key; a kid here would be silently ignored, so say so.
        if (flags.kid !== undefined) throw new MeshidError('ERR_INVALID_ARGUMENT', '--kid applies only with --signing-key-path');
        if (!online) {
          throw new MeshidError('ERR_INVALID_ARGUMENT', 'this build cannot ask the server for user tokens', { hint: 'Sign offline with --signing-key-path and --kid.' });
        }
        const token = await online({ name: flags.name, groups: flags.group ?? [], validFor: flags.validFor }, command);
        process.stdout.write(`${token}\n`);
        return;
      }

      if (!flags.kid) {
        throw new MeshidError('ERR_INVALID_ARGUMENT', '--kid is required with --signing-key-path', { hint: 'Use the kid the server lists this public key under in its static keys.' });
      }
      const privateKey = await readSigningKey(flags.signingKeyPath);
      const token = signUserToken({ kid: flags.kid, privateKey }, { name: flags.name, groups: flags.group ?? [], validForMs });
      process.stdout.write(`${token}\n`);
    });
}
