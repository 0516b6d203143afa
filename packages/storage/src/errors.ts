/**
 * Every error the store throws on purpose is a `StorageError` with a stable
 * `code`. Codes are part of the public contract: add new ones, never rename.
 */
export type StorageErrorCode =
  /** The key is not a string, or not well-formed UTF-16 (a lone surrogate). */
  | 'INVALID_KEY'
  /** The key is the empty string. */
  | 'KEY_EMPTY'
  /** The key is longer than 1024 UTF-8 bytes. */
  | 'KEY_TOO_LONG'
  /** The value is neither a Uint8Array nor a string. */
  | 'INVALID_VALUE'
  /** The value is longer than the store's `maxValueBytes`. */
  | 'VALUE_TOO_LARGE'
  /** An option or argument is out of range (ttl, content type, limit, bucket range, ...). */
  | 'INVALID_ARGUMENT'
  /** A record passed to `apply`/`validateRecord`/`decodeRecord` is malformed. */
  | 'INVALID_RECORD'
  /** A version string passed to `parseVersion` is malformed. */
  | 'INVALID_VERSION'
  /** A scan cursor is not one this store handed out. */
  | 'INVALID_CURSOR'
  /** The store was closed (or is closing). */
  | 'STORE_CLOSED'
  /** `nodeId` was given but the store was created by a different node id. */
  | 'NODE_ID_MISMATCH'
  /** `bucketBits` was given but the store was created with a different value. */
  | 'BUCKET_BITS_MISMATCH'
  /** The on-disk format version is newer than this code understands. */
  | 'UNSUPPORTED_FORMAT'
  /** Bytes read from the database do not decode (disk corruption or a foreign keyspace). */
  | 'CORRUPT_DATA'
  /** Too many writes are already queued; retry later. */
  | 'BUSY'
  /**
   * A version more than `maxClockOffsetMs` ahead of this store's wall clock:
   * a record to apply, a version to observe, or the version a key holds that
   * a local write would have to stamp past. Refused and counted
   * (`clockStatus().versionsRefused`); `details.aheadMs` says how far ahead.
   */
  | 'VERSION_AHEAD'
  /**
   * This store's clock runs more than `maxClockOffsetMs` ahead of its wall
   * clock: at open (the persisted high-water mark; refused unless
   * `acceptClockAhead`), or when stamping (the store stamps nothing until the
   * wall clock catches up; counted in `clockStatus().stampsRefused`).
   * `details.aheadMs` says how far ahead, `details.untilMs` when it is back
   * in bounds.
   */
  | 'CLOCK_AHEAD';

/** Figures that come with some codes (VERSION_AHEAD, CLOCK_AHEAD). */
export interface StorageErrorDetails {
  /** How far the version, or the clock, is ahead of the store's wall clock (ms). */
  readonly aheadMs?: number;
  /** The bound it passed: the store's `maxClockOffsetMs`. */
  readonly maxOffsetMs?: number;
  /** Wall-clock time (epoch ms) from which the clock is back within the bound. */
  readonly untilMs?: number;
}

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  readonly details: StorageErrorDetails | undefined;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown; details?: StorageErrorDetails }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}
