import { Command, CommanderError } from 'commander';
import { HearsayError } from '@hearsay/client';
import type { CommandContext } from './commands/context.ts';
import { registerDevCommand } from './commands/dev.ts';
import { registerKeyCommand } from './commands/key.ts';
import { registerKvCommands } from './commands/kv.ts';
import { registerMembershipCommands } from './commands/membership.ts';
import { registerRepairCommand } from './commands/repair.ts';
import { registerStartCommand } from './commands/start.ts';
import { registerStatusCommand } from './commands/status.ts';
import { registerTokenCommand } from './commands/token.ts';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './errors.ts';
import { processIo, type CliIo } from './io.ts';
import { isFalseWord } from './options.ts';

export const CLI_VERSION = '0.1.0';

/** The `hearsay` program. */
export function createProgram(context: CommandContext): Command {
  const { io } = context;
  const program = new Command('hearsay')
    .description('Hearsay: an eventually consistent key-value store. Every flag also reads HEARSAY_<FLAG> (e.g. HEARSAY_HTTP_PORT).')
    .version(CLI_VERSION, '-V, --version')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError(true)
    .helpCommand(true);

  program.hook('preAction', (_program, action) => applyBooleanEnv(action));

  registerStartCommand(program, context);
  registerDevCommand(program, context);
  registerKvCommands(program, context);
  registerStatusCommand(program, context);
  registerRepairCommand(program, context);
  registerTokenCommand(program, context);
  registerKeyCommand(program, context);
  registerMembershipCommands(program, context);
  return program;
}

/**
 * Runs the CLI on `argv` (the arguments after the program name) and resolves
 * with the exit status: 0 success, 1 the command failed, 2 usage error.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const context: CommandContext = { io, exitCode: EXIT_OK };
  const program = createProgram(context);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return context.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version "errors" are how commander says it printed them.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof CliError) {
      io.stderr.write(`hearsay: ${error.message} [${error.code}]\n`);
      return error.exitCode;
    }
    if (error instanceof HearsayError) {
      const hint = (error.code === 'NETWORK_ERROR' && CERTIFICATE_ERROR.test(error.message) ? CERTIFICATE_HINT : undefined) ?? HINTS[error.code] ?? '';
      io.stderr.write(`hearsay: ${error.message} [${error.code}]${hint}\n`);
      return EXIT_FAILURE;
    }
    throw error;
  }
}

/** Node's codes for a server certificate it cannot verify (a private CA, a self-signed certificate, another host's). */
const CERTIFICATE_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;
const CERTIFICATE_HINT = " (the node's TLS certificate is not trusted: pass the CA that signed it with --ca-file or HEARSAY_CA_FILE)";

/** What to try next, after the message of a client error with this code. */
const HINTS: Readonly<Record<string, string>> = {
  NETWORK_ERROR: ' (is a node running there? start one with `hearsay start`)',
  UNAUTHENTICATED: ' (the node needs a client token: pass one with --token or HEARSAY_TOKEN; make one with `hearsay token create`)',
  FORBIDDEN: " (the token lacks the scope or key prefix this needs; see `hearsay token list` on the node's auth file)",
};

/** Commander turns a boolean flag on when its variable is set at all; `HEARSAY_JSON=0` should mean off. */
function applyBooleanEnv(command: Command): void {
  for (const option of command.options) {
    const name = option.attributeName();
    if (option.isBoolean() && option.envVar !== undefined && command.getOptionValueSource(name) === 'env') {
      if (isFalseWord(process.env[option.envVar] ?? '')) command.setOptionValueWithSource(name, false, 'env');
    }
  }
}
