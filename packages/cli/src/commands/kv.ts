import type { Command } from 'commander';
import { CLI_ERROR_CODES, CliError } from '../errors.ts';
import type { CliIo } from '../io.ts';
import { envOption } from '../options.ts';
import type { CommandContext } from './context.ts';
import { addConsistencyOption, addNodeOption, clientFor, type ConsistencyFlag, type NodeFlag } from './client-options.ts';

/** `put` buffers standard input before sending; more than this is refused before anything is sent. */
export const STDIN_VALUE_BYTES_MAX = 64 * 1024 * 1024;

interface PutFlags extends NodeFlag, ConsistencyFlag {
  readonly contentType?: string;
}

export function registerKvCommands(program: Command, context: CommandContext): void {
  const { io } = context;

  const get = program
    .command('get')
    .summary('print the value of KEY')
    .description('print the value of KEY (raw bytes) to standard output; exit 1 if the key is missing')
    .argument('<key>', 'the key (1 to 1024 bytes of UTF-8; "/" allowed)');
  addNodeOption(get);
  addConsistencyOption(get);
  get.action(async (key: string, flags: NodeFlag & ConsistencyFlag) => {
    const entry = await clientFor(flags).get(key);
    if (entry === undefined) throw new CliError(CLI_ERROR_CODES.NOT_FOUND, `key "${key}" not found`);
    io.stdout.write(entry.value);
    // A terminal prompt would otherwise start on the value's last line.
    if (io.stdout.isTTY === true && entry.value.at(-1) !== 0x0a) io.stdout.write('\n');
  });

  const put = program
    .command('put')
    .summary('store VALUE (or standard input) under KEY')
    .description('store VALUE under KEY (VALUE omitted: read it from standard input); prints the new ETag')
    .argument('<key>', 'the key (1 to 1024 bytes of UTF-8; "/" allowed)')
    .argument('[value]', 'the value; omit it to read the value from standard input')
    .addOption(
      envOption(
        '--content-type <type>',
        'Content-Type stored with the value (default: text/plain; charset=utf-8 for VALUE, application/octet-stream for standard input)',
      ),
    );
  addNodeOption(put);
  addConsistencyOption(put);
  put.action(async (key: string, value: string | undefined, flags: PutFlags) => {
    const body = value ?? (await readStdin(io));
    const contentType = flags.contentType ?? (value === undefined ? 'application/octet-stream' : 'text/plain; charset=utf-8');
    const { etag } = await clientFor(flags).put(key, body, { contentType });
    io.stdout.write(`${etag}\n`);
  });

  const del = program
    .command('del')
    .summary('delete KEY')
    .description('delete KEY (writes a tombstone; deleting a missing key succeeds)')
    .argument('<key>', 'the key (1 to 1024 bytes of UTF-8; "/" allowed)');
  addNodeOption(del);
  addConsistencyOption(del);
  del.action(async (key: string, flags: NodeFlag & ConsistencyFlag) => {
    await clientFor(flags).delete(key);
  });
}

async function readStdin(io: CliIo): Promise<Uint8Array> {
  if (io.stdin.isTTY === true) io.stderr.write('reading the value from standard input (end it with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of io.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += buffer.length;
    if (bytes > STDIN_VALUE_BYTES_MAX) {
      throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, `standard input is over ${STDIN_VALUE_BYTES_MAX} bytes; values that large are not supported`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
