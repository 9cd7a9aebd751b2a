import { Command, CommanderError } from 'commander';
import { MESHID_VERSION, errorMeaning, isMeshidError } from '../core/index.ts';
import { addGlobalOptions, globalOptions } from './globals.ts';
import { registerAuthCommands } from './auth-commands.ts';
import { registerPlaygroundCommands } from './playground-commands.ts';
import { registerServerCommands } from './server-commands.ts';
import { registerTokenCommands } from './token-commands.ts';
import { registerCaCommands } from './ca-commands.ts';
import { registerAgentCommands } from './agent-commands.ts';
import { registerGenerateCommands } from './generate-commands.ts';
import { registerRecoverCommands } from './recover-commands.ts';
import { registerRegistryCommands } from './registry-commands.ts';

export function buildProgram(): Command {
  const program = addGlobalOptions(new Command('meshid'))
    .description('meshid: the security control plane of a Kubernetes service mesh')
    .version(MESHID_VERSION, '--version', 'print the meshid version')
    .showHelpAfterError('(run `meshid --help` for usage)')
    .exitOverride()
    // Bad global flags fail before any command does work.
    .hook('preAction', (_program, action) => void globalOptions(action));
  registerPlaygroundCommands(program);
  registerAuthCommands(program);
  registerServerCommands(program);
  registerTokenCommands(program);
  registerCaCommands(program);
  registerAgentCommands(program);
  // The HTTP client loads only when a token is issued online.
  registerGenerateCommands(program, async (request, command) => (await import('./online-issue.ts')).issueUserTokenOnline(request, command));
  registerRecoverCommands(program);
  registerRegistryCommands(program);
  return program;
}

/** Runs the CLI; errors become one line on stderr (plus a hint) and a non-zero exit. */
export async function main(argv: string[] = process.argv): Promise<number> {
  // `meshid … | head` closes the pipe early; that is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (isMeshidError(error)) {
      process.stderr.write(`error: ${error.message} [${error.code}]\n`);
      if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
      return errorMeaning(error.code).exit;
    }
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
