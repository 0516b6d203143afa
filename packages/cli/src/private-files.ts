/**
 * Files that hold secrets (the cluster key, the auth file, a TLS private
 * key) and the data dir. Like ssh with a private key, a node refuses a
 * secret file that other users may read or write, or that another user
 * owns: whoever can read it can join the cluster or impersonate a client.
 * As PostgreSQL does for its TLS key, a file root owns may also be read by
 * its group (mode 0640, e.g. root:hearsay), so that root can keep the file
 * and a service user can read it.
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, open, stat } from 'node:fs/promises';
import { CLI_ERROR_CODES, CliError, describe, EXIT_USAGE } from './errors.ts';

/** Bits a private file or dir must not have: any access for group or others. */
export const GROUP_OTHER_BITS = 0o077;

const mode = (bits: number): string => `0${(bits & 0o777).toString(8)}`;

/**
 * The text of a secret file, after checking it is a regular file (symlinks
 * followed) of at most `bytesMax` bytes, owned by this user (or root), that
 * group and others cannot access. Throws `CliError` (exit 2) saying how to
 * fix it.
 */
export async function readPrivateFile(path: string, what: string, bytesMax: number): Promise<string> {
  let handle;
  try {
    // O_NOFOLLOW is not used: a secret in a mounted secrets dir is often a symlink (Kubernetes).
    handle = await open(path, fsConstants.O_RDONLY);
  } catch (error) {
    throw new CliError(CLI_ERROR_CODES.FILE_UNREADABLE, `cannot read ${what} ${path}: ${describe(error)}`, { cause: error, exitCode: EXIT_USAGE });
  }
  try {
    // fstat of the open file: the checks and the read see the same file.
    const info = await handle.stat();
    if (!info.isFile()) throw new CliError(CLI_ERROR_CODES.FILE_UNREADABLE, `${what} ${path} is not a regular file`, { exitCode: EXIT_USAGE });
    refuseOpenMode(path, what, info.mode, info.uid);
    if (info.size > bytesMax) throw new CliError(CLI_ERROR_CODES.FILE_UNREADABLE, `${what} ${path} is larger than ${bytesMax} bytes`, { exitCode: EXIT_USAGE });
    return await handle.readFile({ encoding: 'utf8' });
  } finally {
    await handle.close();
  }
}

/** Bits a secret file owned by root (read by a service user) must not have: group write, any access for others. */
export const ROOT_OWNED_FORBIDDEN_BITS = 0o037;

/**
 * Throws when a secret file's mode or owner lets another user at it: it must
 * be this user's with no access for group or others (0600, 0400), or root's
 * with at most group read (0640). `self` is this process's uid (undefined
 * where there are none).
 */
export function refuseOpenMode(path: string, what: string, fileMode: number, uid: number, self: number | undefined = process.getuid?.()): void {
  if (self === undefined) return;
  const rootOwned = uid === 0 && self !== 0;
  if (uid !== self && !rootOwned) {
    throw new CliError(CLI_ERROR_CODES.FILE_TOO_OPEN, `${what} ${path} belongs to another user (uid ${uid}); it must be this user's (or root's): chown it`, { exitCode: EXIT_USAGE });
  }
  if ((fileMode & (rootOwned ? ROOT_OWNED_FORBIDDEN_BITS : GROUP_OTHER_BITS)) !== 0) {
    throw new CliError(
      CLI_ERROR_CODES.FILE_TOO_OPEN,
      `${what} ${path} is open to other users (mode ${mode(fileMode)}); it holds a secret, so it must be private: chmod 600 ${path}` +
        (rootOwned ? ' (or 640 with a group only this node\'s user is in)' : ''),
      { exitCode: EXIT_USAGE },
    );
  }
}

/**
 * Makes the data dir private (0700) if group or others had any access, and
 * says what it changed. Files inside need no change: nobody else can reach
 * them through a private dir, and the node's umask (077) makes new ones 0600.
 */
export async function makeDirPrivate(dir: string): Promise<{ readonly fromMode: number } | undefined> {
  const info = await stat(dir);
  if ((info.mode & GROUP_OTHER_BITS) === 0) return undefined;
  await chmod(dir, info.mode & 0o700);
  return { fromMode: info.mode & 0o777 };
}
