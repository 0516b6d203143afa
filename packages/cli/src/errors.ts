/**
 * Why a CLI command failed, with a stable code and the process exit status.
 * The message is written for the person at the terminal.
 */
export const CLI_ERROR_CODES = {
  /** Another process listens on the HTTP port. */
  PORT_IN_USE: 'PORT_IN_USE',
  /** The host is not an address of this machine, or binding is not permitted. */
  ADDRESS_UNAVAILABLE: 'ADDRESS_UNAVAILABLE',
  /** The data dir cannot be created, read or written. */
  DATA_DIR_UNUSABLE: 'DATA_DIR_UNUSABLE',
  /** Another node (another process) has the data dir open. */
  DATA_DIR_LOCKED: 'DATA_DIR_LOCKED',
  /** `--node-id` differs from the id the data dir was created with. */
  NODE_ID_MISMATCH: 'NODE_ID_MISMATCH',
  /** A flag or environment variable has a value the command cannot use. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** `get` of a key that is missing or deleted. */
  NOT_FOUND: 'NOT_FOUND',
  /** `repair` finished but the replicas it covered are not in sync. */
  NOT_IN_SYNC: 'NOT_IN_SYNC',
  /** A secret file (cluster key, auth file, TLS key) that group or others may access, or another user owns. */
  FILE_TOO_OPEN: 'FILE_TOO_OPEN',
  /** A file named by a flag is missing, not a regular file, or too large. */
  FILE_UNREADABLE: 'FILE_UNREADABLE',
  /** A file the command creates or rewrites cannot be written (or exists, for a new key). */
  FILE_UNWRITABLE: 'FILE_UNWRITABLE',
  /** `token revoke` of an id the auth file does not list. */
  TOKEN_NOT_FOUND: 'TOKEN_NOT_FOUND',
  /** The auth file does not parse; the message names the line. */
  AUTH_FILE_INVALID: 'AUTH_FILE_INVALID',
  /** A node with seeds and no cluster key (and no `--insecure`). */
  CLUSTER_KEY_REQUIRED: 'CLUSTER_KEY_REQUIRED',
  /** The TLS certificate, key and CA files do not make a usable certificate (e.g. the key is not the certificate's). */
  TLS_INVALID: 'TLS_INVALID',
  /** The cluster key file holds no usable key. */
  CLUSTER_KEY_INVALID: 'CLUSTER_KEY_INVALID',
  /** `decommission` or `remove` did not finish within `--timeout-s` (the change goes on). */
  TIMEOUT: 'TIMEOUT',
  /** No member answers (to follow a decommission after the node exited). */
  UNREACHABLE: 'UNREACHABLE',
  /**
   * The clock high-water mark in the data dir is ahead of this machine's clock
   * by more than the maximum offset: fix the clock and wait, or start with
   * `--accept-clock-ahead`.
   */
  CLOCK_AHEAD: 'CLOCK_AHEAD',
} as const;

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, message: string, options?: { exitCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.exitCode = options?.exitCode ?? EXIT_FAILURE;
  }
}

/** Whether `error` or any error in its `cause` chain has this `code` (Node's `EADDRINUSE`, level's `LEVEL_LOCKED`, ...). */
export function hasCode(error: unknown, code: string): boolean {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 8; depth += 1) {
    if (typeof current !== 'object') return false;
    if ((current as { code?: unknown }).code === code) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** An error's message with its direct cause's, for the person at the terminal. */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
