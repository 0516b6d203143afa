import { isStorageError } from '@hearsay/storage';
import type { Clock } from '@hearsay/clock';

/** Store errors that say the request was refused, not that the disk failed. */
const REFUSALS = new Set(['INVALID_KEY', 'KEY_EMPTY', 'KEY_TOO_LONG', 'INVALID_VALUE', 'VALUE_TOO_LARGE', 'INVALID_ARGUMENT', 'INVALID_RECORD', 'BUSY', 'STORE_CLOSED']);

/** How long a failed write keeps the node unhealthy when no write succeeds after it. */
export const STORE_FAILURE_WINDOW_MS = 30_000;

/**
 * Whether this node's store can write, as its writes show it: a write that
 * failed for another reason than bad input, a full queue or a closed store
 * (a full disk, an I/O error) makes `problem()` say so until a later write
 * succeeds, or for `STORE_FAILURE_WINDOW_MS` after the last failure. The
 * coordinator's health is not ok meanwhile, so `/v1/health` and
 * `hearsay status` show a node that cannot write.
 */
export class StoreWriteHealth {
  readonly #clock: Clock;
  #failure: { readonly message: string; readonly atMs: number } | undefined;
  /** Writes that failed so (for /metrics). */
  failures = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** `work`, noting whether it failed because the store could not write. */
  observe<T>(work: Promise<T>): Promise<T> {
    return work.then(
      (value) => {
        this.#failure = undefined;
        return value;
      },
      (error: unknown) => {
        this.noteFailure(error);
        throw error;
      },
    );
  }

  noteSuccess(): void {
    this.#failure = undefined;
  }

  noteFailure(error: unknown): void {
    if (isStorageError(error) && REFUSALS.has(error.code)) return;
    this.failures++;
    const message = error instanceof Error ? error.message : String(error);
    this.#failure = { message, atMs: this.#clock.now() };
  }

  /** Why the store cannot write, or undefined. */
  problem(): string | undefined {
    const f = this.#failure;
    if (f === undefined) return undefined;
    if (this.#clock.now() - f.atMs > STORE_FAILURE_WINDOW_MS) {
      this.#failure = undefined;
      return undefined;
    }
    return `the store cannot write: ${f.message.slice(0, 200)}`;
  }
}
