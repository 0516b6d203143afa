/**
 * Every error a repair session or responder raises on purpose is a
 * `RepairError` with a stable `code`. Codes are part of the public contract:
 * add new ones, never rename.
 */
export type RepairErrorCode =
  /** Bytes that are not MessagePack, or a message of the wrong shape. */
  | 'MALFORMED_MESSAGE'
  /** A message type number this code does not know (a newer peer?). */
  | 'UNKNOWN_MESSAGE_TYPE'
  /** The peer speaks a protocol version this code does not. */
  | 'UNSUPPORTED_VERSION'
  /** A message is larger than the receiver accepts. */
  | 'MESSAGE_TOO_LARGE'
  /** The bucket range is not [from, to) inside the store with a power-of-two length. */
  | 'INVALID_RANGE'
  /** The two stores were created with different `bucketBits`. */
  | 'BUCKET_BITS_MISMATCH'
  /** A reply that does not answer the request (wrong type, wrong length, no progress). */
  | 'UNEXPECTED_REPLY'
  /** A record received from the peer is malformed or outside the buckets asked for. */
  | 'INVALID_RECORD'
  /** An option passed to the session or responder is out of range. */
  | 'INVALID_ARGUMENT'
  /** The peer answered with an error; `remoteCode` holds its code. */
  | 'REMOTE_ERROR'
  /** The transport failed to deliver a request or its reply. */
  | 'TRANSPORT_FAILED'
  /** The local store failed (closed, busy, corrupt); `cause` holds its error. */
  | 'STORE_FAILED'
  /** A bug: an invariant broke. Report it. */
  | 'INTERNAL';

export class RepairError extends Error {
  override readonly name = 'RepairError';
  readonly code: RepairErrorCode;
  /** For REMOTE_ERROR: the code the peer sent. */
  readonly remoteCode?: string;

  constructor(code: RepairErrorCode, message: string, options?: { cause?: unknown; remoteCode?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.remoteCode !== undefined) this.remoteCode = options.remoteCode;
  }
}

export function isRepairError(error: unknown, code?: RepairErrorCode): error is RepairError {
  return error instanceof RepairError && (code === undefined || error.code === code);
}

/** Runs a store operation, turning its failure into STORE_FAILED (RepairErrors pass through). */
export async function fromStore<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (isRepairError(e)) throw e;
    throw new RepairError('STORE_FAILED', `store failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

/**
 * Buckets read with one `bucketEntriesMany` call: the store reads runs of
 * nearby buckets with one range read, so a bucket costs a fraction of an
 * iterator instead of one (the time of a diverged repair was almost all
 * per-bucket iterators). ~15 entries per bucket at 1M keys and 2^16 buckets.
 */
export const BUCKETS_PER_READ = 64;
