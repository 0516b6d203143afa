/**
 * The node's auth file (`--auth-file`): read at start, where a bad file
 * stops the start (exit 2), and read again on SIGHUP and whenever it
 * changes, where a bad file is logged and the tokens in force stay (a typo
 * must not lock every client out, nor let everyone in).
 */
import { AUTH_FILE_LIMITS, AuthFileError, parseAuthFile, type Principal, type TokenTable, type TokenVerifier } from '@hearsay/http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { CLI_ERROR_CODES, CliError, describe, EXIT_USAGE } from './errors.ts';
import { reloadOnChange, type Reloader } from './file-watch.ts';
import type { Logger } from './logger.ts';
import { readPrivateFile } from './private-files.ts';

/** Reads and parses the auth file; throws `CliError` (exit 2) for a file that is too open, unreadable or invalid. */
export async function readAuthFile(path: string): Promise<TokenTable> {
  const text = await readPrivateFile(path, 'auth file', AUTH_FILE_LIMITS.bytesMax);
  try {
    return parseAuthFile(text);
  } catch (error) {
    if (error instanceof AuthFileError) {
      throw new CliError(CLI_ERROR_CODES.AUTH_FILE_INVALID, `auth file ${path}: ${error.message}`, { cause: error, exitCode: EXIT_USAGE });
    }
    throw error;
  }
}

/** The tokens of an auth file, swapped in place on every good reload. */
export class AuthFile implements TokenVerifier {
  readonly path: string;
  #table: TokenTable;
  readonly #logger: Logger;
  #reloader: Reloader | undefined;
  readonly #reloads = { ok: 0, error: 0 };

  private constructor(path: string, table: TokenTable, logger: Logger) {
    this.path = path;
    this.#table = table;
    this.#logger = logger;
  }

  /** Reads the file (throwing `CliError` when it is unusable), then reloads it on change and on SIGHUP until `close()`. */
  static async open(path: string, logger: Logger): Promise<AuthFile> {
    const file = new AuthFile(path, await readAuthFile(path), logger);
    file.#reloader = reloadOnChange(
      [path],
      (reason) => file.#reloadOnce(reason),
      (error) => logger.warn({ err: error, authFile: path }, 'cannot watch the auth file for changes; reload it with SIGHUP'),
    );
    return file;
  }

  get size(): number {
    return this.#table.size;
  }

  verify(token: string): Principal | undefined {
    return this.#table.verify(token);
  }

  /** Reads the file again; resolves once the reload (and any asked for meanwhile) is done. Never rejects. */
  reload(reason: string): Promise<void> {
    return this.#reloader?.reload(reason) ?? this.#reloadOnce(reason);
  }

  async #reloadOnce(reason: string): Promise<void> {
    let table: TokenTable;
    try {
      table = await readAuthFile(this.path);
    } catch (error) {
      this.#reloads.error += 1;
      this.#logger.error({ authFile: this.path, reason, err: error }, `auth file not reloaded (${describe(error)}); the ${this.#table.size} tokens loaded before stay in force`);
      return;
    }
    const before = new Set(this.#table.ids());
    const after = new Set(table.ids());
    const added = [...after].filter((id) => !before.has(id));
    const removed = [...before].filter((id) => !after.has(id));
    this.#table = table;
    this.#reloads.ok += 1;
    this.#logger.info({ authFile: this.path, reason, tokens: table.size, added, removed }, `auth file reloaded (${reason}): ${table.size} tokens`);
  }

  /** `hearsay_auth_tokens` and `hearsay_auth_file_reloads_total{result}` in the node's registry. */
  register(registry: Registry): void {
    const file = this;
    new Gauge({
      name: 'hearsay_auth_tokens',
      help: 'Tokens in the auth file in force.',
      registers: [registry],
      collect() {
        this.set(file.size);
      },
    });
    new Counter({
      name: 'hearsay_auth_file_reloads_total',
      help: 'Reloads of the auth file (SIGHUP or a change), by result; on error the tokens before stay in force.',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ result: 'ok' }, file.#reloads.ok);
        this.inc({ result: 'error' }, file.#reloads.error);
      },
    });
  }

  close(): void {
    this.#reloader?.close();
  }
}
