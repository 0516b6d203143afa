import type { CliIo } from '../io.ts';

/** What a command's action needs besides its options; `exitCode` is what the run returns. */
export interface CommandContext {
  readonly io: CliIo;
  exitCode: number;
}
