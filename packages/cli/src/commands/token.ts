import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { AUTH_FILE_LIMITS, AuthFileError, createToken, parseAuthFile, SCOPES, type NewToken, type Principal } from '@hearsay/http';
import { readAuthFile } from '../auth-file.ts';
import { CLI_ERROR_CODES, CliError, describe, EXIT_USAGE, hasCode } from '../errors.ts';
import { envOption } from '../options.ts';
import { readPrivateFile } from '../private-files.ts';
import type { CommandContext } from './context.ts';
import { formatTable } from '../table.ts';

interface CreateFlags {
  readonly scope: string[];
  readonly prefix?: string[];
  readonly id?: string;
  readonly authFile?: string;
  readonly json: boolean;
}

interface FileFlags {
  readonly authFile: string;
}

const RELOAD_HINT = 'nodes started with --auth-file pick up the change on their own (or on SIGHUP)';

/** `hearsay token create | list | revoke`: client tokens and the auth file (Consul's `acl token`, etcd's `user`). */
export function registerTokenCommand(program: Command, context: CommandContext): void {
  const { io } = context;
  const token = program
    .command('token')
    .summary('make, list and revoke client tokens (the auth file of hearsay start --auth-file)')
    .description(
      `client tokens: a node started with --auth-file FILE serves a request only with Authorization: Bearer <token> of a token in FILE ` +
        `that has the route's scope (${SCOPES.join(', ')}). The file keeps only a hash of each token`,
    );

  const authFileOption = (required: boolean) =>
    envOption('--auth-file <file>', required ? 'the auth file' : 'append the new token to this auth file (created, mode 600, when missing) and print only the token');

  token
    .command('create')
    .summary('make a token; print it once, with the line that admits it')
    .description(
      'make a token with the given scopes (read: GET/HEAD of keys, listing, /v1/cluster; write: PUT and DELETE; metrics: /metrics; ' +
        'admin: everything, including repair), optionally limited to keys under --prefix. The token is printed once: give it to the client ' +
        '(hearsay --token, HEARSAY_TOKEN). Without --auth-file the auth file line is printed too: add it to the file of every node',
    )
    .requiredOption('--scope <scopes>', `what the token may do: ${SCOPES.join(', ')} (comma-separated, or the flag repeated)`, collectScopes, [])
    .option('--prefix <prefix>', 'limit the key routes to keys starting with this (repeatable; not with admin)', collectPrefixes)
    .option('--id <id>', 'the token id, shown in logs and the auth file (A-Z a-z 0-9 _ -; default: t-<random>)')
    .addOption(authFileOption(false))
    .option('--json', 'print { id, token, line } as JSON', false)
    .action(async (flags: CreateFlags) => {
      const made = makeToken(flags);
      if (flags.authFile !== undefined) {
        await appendToken(flags.authFile, made);
        if (flags.json) io.stdout.write(`${JSON.stringify({ id: made.entry.id, token: made.token, line: made.line, authFile: flags.authFile })}\n`);
        else io.stdout.write(`${made.token}\n`);
        io.stderr.write(`added token ${made.entry.id} (${describePrincipal(made.entry)}) to ${flags.authFile}; ${RELOAD_HINT}. The token is shown once.\n`);
        return;
      }
      if (flags.json) {
        io.stdout.write(`${JSON.stringify({ id: made.entry.id, token: made.token, line: made.line })}\n`);
        return;
      }
      io.stdout.write(`token:     ${made.token}\nauth line: ${made.line}\n`);
      io.stderr.write(`The token is shown once: give it to the client (--token or HEARSAY_TOKEN). Add the auth line to the auth file of every node; ${RELOAD_HINT}.\n`);
    });

  token
    .command('list')
    .summary('list the tokens of an auth file (ids, scopes, prefixes; never secrets)')
    .addOption(authFileOption(true).makeOptionMandatory())
    .action(async (flags: FileFlags) => {
      const table = await readAuthFile(flags.authFile);
      const rows = table.ids().map((id) => {
        const principal = table.principal(id)!;
        return [id, [...principal.scopes].join(','), principal.prefixes?.join(' ') ?? '(every key)'];
      });
      io.stdout.write(`${formatTable(['ID', 'SCOPES', 'PREFIXES'], rows)}\n`);
    });

  token
    .command('revoke')
    .summary('remove a token from an auth file')
    .description(`remove the line of token ID from the auth file; ${RELOAD_HINT}, and refuse the token from then on`)
    .argument('<id>', 'the token id (as in hearsay token list)')
    .addOption(authFileOption(true).makeOptionMandatory())
    .action(async (id: string, flags: FileFlags) => {
      await revokeToken(flags.authFile, id);
      io.stderr.write(`revoked token ${id} in ${flags.authFile}; ${RELOAD_HINT}\n`);
    });
}

function collectScopes(value: string, previous: string[]): string[] {
  const scopes = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) throw new InvalidArgumentError(`unknown scope "${scope}" (${SCOPES.join(', ')})`);
  }
  return [...previous, ...scopes];
}

function collectPrefixes(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function makeToken(flags: CreateFlags): NewToken {
  try {
    return createToken({ scopes: flags.scope, ...(flags.prefix === undefined ? {} : { prefixes: flags.prefix }), ...(flags.id === undefined ? {} : { id: flags.id }) });
  } catch (error) {
    if (error instanceof AuthFileError) throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, error.message, { exitCode: EXIT_USAGE });
    throw error;
  }
}

function describePrincipal(principal: Principal): string {
  const scopes = [...principal.scopes].join(', ');
  return principal.prefixes === undefined ? `${scopes} on every key` : `${scopes} on keys under ${principal.prefixes.map((p) => JSON.stringify(p)).join(', ')}`;
}

/** The auth file's text, or '' when it does not exist yet; refuses a file others can read (exit 2). */
async function currentText(path: string): Promise<string> {
  try {
    return await readPrivateFile(path, 'auth file', AUTH_FILE_LIMITS.bytesMax);
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return '';
    throw error;
  }
}

async function appendToken(path: string, made: NewToken): Promise<void> {
  const before = await currentText(path);
  const created = new Date().toISOString();
  const text = `${before}${before === '' || before.endsWith('\n') ? '' : '\n'}${made.line} # created ${created}\n`;
  checkParses(path, text);
  await replaceFile(path, text);
}

async function revokeToken(path: string, id: string): Promise<void> {
  const before = await currentText(path);
  checkParses(path, before);
  const lines = before.split('\n');
  const kept = lines.filter((line) => !fieldsOf(line).includes(`id=${id}`));
  if (kept.length === lines.length) throw new CliError(CLI_ERROR_CODES.TOKEN_NOT_FOUND, `auth file ${path} has no token ${id}`);
  await replaceFile(path, kept.join('\n'));
}

function fieldsOf(line: string): string[] {
  const hash = line.indexOf('#');
  return (hash === -1 ? line : line.slice(0, hash)).trim().split(/[ \t]+/);
}

function checkParses(path: string, text: string): void {
  try {
    parseAuthFile(text);
  } catch (error) {
    if (error instanceof AuthFileError) throw new CliError(CLI_ERROR_CODES.AUTH_FILE_INVALID, `auth file ${path}: ${error.message}`, { cause: error, exitCode: EXIT_USAGE });
    throw error;
  }
}

/**
 * Writes the whole file anew (mode 600) and renames it into place, so a node
 * reloading at that moment reads the old file or the new one, never half.
 */
async function replaceFile(path: string, text: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new CliError(CLI_ERROR_CODES.FILE_UNWRITABLE, `cannot write auth file ${path}: ${describe(error)}`, { cause: error });
  }
}
