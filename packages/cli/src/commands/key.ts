import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { generateKey } from '@hearsay/gossip';
import { CLI_ERROR_CODES, CliError, describe, hasCode } from '../errors.ts';
import type { CommandContext } from './context.ts';

interface GenerateFlags {
  readonly out?: string;
}

/** `hearsay key generate`: a random cluster key (32 bytes, base64), like `consul keygen`. */
export function registerKeyCommand(program: Command, context: CommandContext): void {
  const { io } = context;
  const key = program.command('key').summary('make cluster keys').description('make the shared key of a cluster (--cluster-key-file of hearsay start)');
  key
    .command('generate')
    .summary('print a new random cluster key, or write it to a private file')
    .description(
      'make a random 256-bit cluster key (base64). With --out, write it to a new file readable by you alone (mode 600) ' +
        'and print nothing secret; give every node of the cluster the same file with --cluster-key-file',
    )
    .option('--out <file>', 'write the key to this new file (mode 600) instead of standard output; an existing file is not overwritten')
    .action(async (flags: GenerateFlags) => {
      const secret = generateKey();
      if (flags.out === undefined) {
        io.stdout.write(`${secret}\n`);
        return;
      }
      try {
        // 'wx': never replace a key a cluster may be using.
        await writeFile(flags.out, `${secret}\n`, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        const why = hasCode(error, 'EEXIST') ? 'it exists (a cluster may be using that key: remove it first, or pick another path)' : describe(error);
        throw new CliError(CLI_ERROR_CODES.FILE_UNWRITABLE, `cannot write ${flags.out}: ${why}`, { cause: error });
      }
      io.stderr.write(`wrote a new cluster key to ${flags.out} (mode 600); start every node of the cluster with --cluster-key-file ${flags.out}\n`);
    });
}
