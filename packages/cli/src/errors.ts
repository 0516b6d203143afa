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
