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
  | 'BUSY';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}
