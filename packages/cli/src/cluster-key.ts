/**
 * The cluster key of a node: from `--cluster-key-file` (a private file, the
 * way to keep it out of `ps` and shell history), or `--cluster-key` /
 * `HEARSAY_CLUSTER_KEY`. `hearsay key generate` makes one.
 *
 * The file holds one key a line (`#` comments and blank lines ignored):
 * the first signs internode requests and seals gossip, every one is
 * accepted. Rotating is three edits of the file on every node, each applied
 * everywhere before the next (the node reloads the file on change and on
 * SIGHUP): add the new key as a second line; move it to the first line;
 * remove the old line.
 */
import { createHash } from 'node:crypto';
import { ClusterKeys } from '@hearsay/cluster';
import { CLI_ERROR_CODES, CliError, describe, EXIT_USAGE } from './errors.ts';
import { reloadOnChange, type Reloader } from './file-watch.ts';
import type { Logger } from './logger.ts';
import { readPrivateFile } from './private-files.ts';

/** A key file is a few lines; anything larger is not one. */
export const KEY_FILE_BYTES_MAX = 64 * 1024;
/** Characters of a key: printable ASCII, no spaces (a line of the file). */
const KEY_PATTERN = /^[!-~]{1,1024}$/;
/** A key shorter than this is a passphrase: allowed, but `hearsay key generate` is better. */
export const KEY_CHARS_MIN_ADVISED = 32;

/** The keys of a key file in file order; throws `CliError` (exit 2) when it holds none or a malformed line. */
export function parseKeyFile(text: string, path: string): string[] {
  const keys: string[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!KEY_PATTERN.test(line)) {
      throw new CliError(CLI_ERROR_CODES.CLUSTER_KEY_INVALID, `cluster key file ${path}, line ${index + 1}: a key is 1 to 1024 printable characters without spaces`, { exitCode: EXIT_USAGE });
    }
    keys.push(line);
  }
  if (keys.length === 0) {
    throw new CliError(CLI_ERROR_CODES.CLUSTER_KEY_INVALID, `cluster key file ${path} holds no key; make one with: hearsay key generate --out ${path}`, { exitCode: EXIT_USAGE });
  }
  return keys;
}

export async function readKeyFile(path: string): Promise<string[]> {
  return parseKeyFile(await readPrivateFile(path, 'cluster key file', KEY_FILE_BYTES_MAX), path);
}

/** What `hearsay start` says when a node with seeds has no key. */
export function keyRequiredMessage(): string {
  return (
    'this node joins a cluster (--seeds) but has no cluster key: anyone who reaches its ports could join and read or write every key. ' +
    'Make a key once with `hearsay key generate --out cluster.key`, copy that file to every node (mode 600), and start each with ' +
    '--cluster-key-file cluster.key (or HEARSAY_CLUSTER_KEY); --insecure runs without one (a trusted test network only)'
  );
}

/** A key's name in logs: never the key, the first 8 hex digits of its SHA-256. */
export function keyFingerprint(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * The keys of `--cluster-key-file`, reloaded on change and SIGHUP: each good
 * reload is a rotation step (`ClusterKeys.replace`: the first key signs,
 * every key is accepted); a bad file is logged and the keys in force stay.
 */
export class ClusterKeyFile {
  readonly keys: ClusterKeys;
  readonly #reloader: Reloader;

  private constructor(readonly path: string, keys: ClusterKeys, logger: Logger) {
    this.keys = keys;
    this.#reloader = reloadOnChange(
      [path],
      async (reason) => {
        let next: string[];
        try {
          next = await readKeyFile(path);
          if (next.join('\n') === keys.all.join('\n')) return;
          keys.replace(next);
        } catch (error) {
          logger.error({ clusterKeyFile: path, reason, err: error }, `cluster key file not reloaded (${describe(error)}); the keys in force stay`);
          return;
        }
        logger.info(
          { clusterKeyFile: path, reason, primary: keyFingerprint(next[0]!), accepted: next.map(keyFingerprint) },
          `cluster keys reloaded (${reason}): signing with key ${keyFingerprint(next[0]!)}, accepting ${next.length}`,
        );
      },
      (error) => logger.warn({ err: error, clusterKeyFile: path }, 'cannot watch the cluster key file for changes; reload it with SIGHUP'),
    );
  }

  /** Reads the file (throwing `CliError`, exit 2, when unusable), then follows it until `close()`. */
  static async open(path: string, logger: Logger): Promise<ClusterKeyFile> {
    const keys = await readKeyFile(path);
    try {
      return new ClusterKeyFile(path, new ClusterKeys(keys), logger);
    } catch (error) {
      throw new CliError(CLI_ERROR_CODES.CLUSTER_KEY_INVALID, `cluster key file ${path}: ${describe(error)}`, { cause: error, exitCode: EXIT_USAGE });
    }
  }

  reload(reason: string): Promise<void> {
    return this.#reloader.reload(reason);
  }

  close(): void {
    this.#reloader.close();
  }
}
