/**
 * The public contract of `@hearsay/storage`. Other packages (repair, http,
 * cluster) code against these types; change them only by extending them.
 */

/**
 * A hybrid logical clock stamp plus the id of the node that made it.
 * Totally ordered by `ms`, then `counter`, then `node` (byte order of the
 * UTF-8 id). See docs/invariants.md, "Versions".
 */
export interface Version {
  /** Wall-clock milliseconds since the epoch, never behind the node's high-water mark. */
  readonly ms: number;
  /** Logical counter within one `ms`, 0 to 2^31 - 1. */
  readonly counter: number;
  /** Id of the node whose clock made the stamp. */
  readonly node: string;
}

/** One versioned record: a value or a tombstone. */
export interface StoredRecord {
  readonly key: string;
  /** The value bytes; empty for a tombstone. */
  readonly value: Uint8Array;
  readonly contentType?: string;
  readonly version: Version;
  readonly tombstone: boolean;
  /** Absolute expiry time (epoch ms). An expired record reads as absent. */
  readonly expiresAtMs?: number;
}

export interface PutOptions {
  readonly contentType?: string;
  /** Time to live; the record reads as absent from `now + ttlMs` on. */
  readonly ttlMs?: number;
  /**
   * Keep `value` itself instead of a copy (a `Uint8Array` value only). For a
   * caller that hands over a buffer it will never modify again, such as a
   * request body read into a fresh buffer: the copy is a second allocation
   * per write. Default false: the store copies, so a caller that reuses its
   * buffer cannot change what was stored or cached.
   */
  readonly adoptValue?: boolean;
}

export type BatchOp =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array | string; readonly contentType?: string; readonly ttlMs?: number }
  | { readonly type: 'delete'; readonly key: string };

export interface ScanOptions {
  /** Only keys starting with this prefix. */
  readonly prefix?: string;
  /** Inclusive lower bound on the key. */
  readonly gte?: string;
  /** Exclusive upper bound on the key. */
  readonly lt?: string;
  /** Resume after this opaque cursor (the `next` of a previous page). */
  readonly cursor?: string;
  /** Page size; default 100. */
  readonly limit?: number;
  /** Include tombstones and expired records (for replication). Default false. */
  readonly includeTombstones?: boolean;
}

export interface ScanPage {
  readonly records: StoredRecord[];
  /** Cursor for the next page, or null when the scan is complete. */
  readonly next: string | null;
}

/** An event per change that was applied (a local write or an `apply` that won). */
export interface Change {
  readonly record: StoredRecord;
  /** The record it replaced, if any. */
  readonly previous?: StoredRecord;
  readonly origin: 'local' | 'replicated';
}

/** One `(key, version)` entry of an anti-entropy bucket. */
export interface BucketEntry {
  readonly key: string;
  /** 64-bit hash of the key (see `hashKey`). */
  readonly keyHash: bigint;
  readonly version: Version;
  readonly tombstone: boolean;
}

/** What `applyEach` did with one record. */
export type ApplyOutcome =
  /** The record replaced what the key held (or the key held nothing). */
  | { readonly status: 'applied' }
  /**
   * Not applied: the store keeps the record it holds, which wins over the
   * given one by last-write-wins or is the same record (an equal version).
   * Its version and whether it is a tombstone: a writer that finds a higher
   * version than it stamped learns that its write lost.
   */
  | { readonly status: 'held'; readonly version: Version; readonly tombstone: boolean }
  /**
   * Refused, nothing written for it: its version is more than
   * `maxClockOffsetMs` ahead of this store's wall clock (VERSION_AHEAD;
   * counted in `clockStatus().versionsRefused`).
   */
  | { readonly status: 'refused'; readonly code: 'VERSION_AHEAD'; readonly aheadMs: number };

/** The store's clock against its wall clock and the maximum offset, and what the bound refused. */
export interface ClockStatus {
  /** The wall clock (epoch ms). */
  readonly wallMs: number;
  /** The clock's reading: the later of the wall clock and the last stamp issued or observed. */
  readonly readingMs: number;
  /** How far the clock runs ahead of the wall clock (0 when it does not). */
  readonly aheadMs: number;
  readonly maxOffsetMs: number;
  /** While the clock is more than `maxOffsetMs` ahead: when stamps resume (epoch ms, wall clock); else null. */
  readonly stampsResumeAtMs: number | null;
  /** Records and versions refused for being more than `maxOffsetMs` ahead (apply, applyMany, applyEach, observe, local writes to such a key). */
  readonly versionsRefused: number;
  /** Local writes and `now()` calls refused while the clock ran too far ahead. */
  readonly stampsRefused: number;
}

export interface StoreStats {
  /** Live (non-tombstone) records. */
  readonly keys: number;
  readonly tombstones: number;
  readonly bucketBits: number;
}

export interface PurgeOptions {
  /** Purge tombstones whose version `ms` is strictly below this. */
  readonly beforeMs: number;
  /** Only buckets in [fromBucket, toBucket). Default: all. */
  readonly fromBucket?: number;
  readonly toBucket?: number;
}

export interface DropRangeOptions {
  /** Buckets [fromBucket, toBucket). Default: all. */
  readonly fromBucket?: number;
  readonly toBucket?: number;
}

export interface Store {
  readonly nodeId: string;
  /** B: the store has 2^B anti-entropy buckets. */
  readonly bucketBits: number;

  // Local writes: stamp a new version from this store's clock.
  put(key: string, value: Uint8Array | string, options?: PutOptions): Promise<StoredRecord>;
  delete(key: string): Promise<StoredRecord>;
  /** All ops commit atomically, or none does. */
  batch(ops: readonly BatchOp[]): Promise<StoredRecord[]>;

  // Replicated writes: merge records made elsewhere by last-write-wins.
  /** Returns true when the record changed the store. Throws VERSION_AHEAD (writing nothing) for a version too far ahead. */
  apply(record: StoredRecord): Promise<boolean>;
  /** All committed atomically, or (one malformed or too far ahead) none is. */
  applyMany(records: readonly StoredRecord[]): Promise<boolean[]>;
  /**
   * Like `applyMany`, but each record is decided on its own: applied, held
   * (the store's record wins or is the same: its version is returned), or
   * refused (too far ahead). The records not refused commit atomically. A
   * malformed record still fails the whole call.
   */
  applyEach(records: readonly StoredRecord[]): Promise<ApplyOutcome[]>;

  // Reads.
  /** A live record, or undefined when missing, deleted or expired. */
  get(key: string): Promise<StoredRecord | undefined>;
  /** The stored record whatever it is (tombstones and expired included). */
  getRecord(key: string): Promise<StoredRecord | undefined>;
  /**
   * `getRecord` without waiting, when it can be answered now: from the read
   * cache, or with a synchronous read (`syncReads` on a backend that has
   * `getSync`). null when only `getRecord` can answer (an asynchronous read
   * is needed). Throws what `getRecord` would reject with.
   */
  getRecordNow(key: string): StoredRecord | undefined | null;
  getRecords(keys: readonly string[]): Promise<(StoredRecord | undefined)[]>;
  scan(options?: ScanOptions): Promise<ScanPage>;
  /** Subscribe to applied changes; returns the unsubscribe function. */
  subscribe(listener: (change: Change) => void): () => void;

  // Anti-entropy index.
  /** Digests of buckets [from, to), each `DIGEST_BYTES` long; an empty bucket is all zeros. */
  bucketDigests(from: number, to: number): Promise<Uint8Array[]>;
  /** The entries of one bucket, sorted by (keyHash, key). */
  bucketEntries(bucket: number): Promise<BucketEntry[]>;
  /**
   * `bucketEntries` of each of these buckets (any order, repeats allowed),
   * answered in the same order. Runs of nearby buckets are read with one
   * range read each instead of one per bucket.
   */
  bucketEntriesMany(buckets: readonly number[]): Promise<BucketEntry[][]>;

  /** Remove tombstones older than the cut-off; returns how many were purged. */
  purgeTombstones(options: PurgeOptions): Promise<number>;
  /**
   * Forgets every record of a bucket range — live ones and tombstones — with
   * its index entries, updating digests and counts. Not a delete: nothing is
   * written in their place, so another replica's copy is not shadowed. For
   * a cluster node once its partition's records live on other replicas.
   */
  dropRange(options: DropRangeOptions): Promise<number>;

  /** Observe a version seen elsewhere so later local stamps are above it. Throws VERSION_AHEAD (the clock unmoved) for one too far ahead. */
  observe(version: Version): void;
  /** A fresh version from this store's clock. Throws CLOCK_AHEAD while the clock runs too far ahead of the wall clock. */
  now(): Version;
  /** The clock against the wall clock and the maximum offset, and the refusals counted so far. */
  clockStatus(): ClockStatus;

  stats(): StoreStats;
  close(): Promise<void>;
}
