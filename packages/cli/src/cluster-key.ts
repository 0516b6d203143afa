/**
 * The cluster key of a node: from `--cluster-key-file` (a private file, the
 * way to keep it out of `ps` and shell history), or `--cluster-key` /
 * `HEARSAY_CLUSTER_KEY`. `hearsay key generate` makes one.
 *
 * The file holds one key a line (`#` comments and blank lines ignored).
 */
import { CLI_ERROR_CODES, CliError, EXIT_USAGE } from './errors.ts';
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
