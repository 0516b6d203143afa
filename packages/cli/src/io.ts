import type { Readable } from 'node:stream';

/** A place the CLI writes to; `process.stdout` fits, and so does a test's buffer. */
export interface Output {
  write(chunk: string | Uint8Array): boolean;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** The streams a CLI run uses, so commands run in-process in tests. */
export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly stdin: Readable & { readonly isTTY?: boolean };
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
}
