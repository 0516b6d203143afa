import { randomBytes } from 'node:crypto';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import { StorageError } from './errors.ts';
import {
  BUCKET_BITS_MAX, DIGEST_BYTES, bucketOfHashBytes, entryDigest, entryDigestLatin1, sha256Latin1, xorDigestInto, xorLatin1Into,
} from './hash.ts';
import {
  CHECKPOINT_META, DEFAULT_MAX_JOURNAL_BYTES, DigestJournal, allPages, loadDigests, type DigestPlan, type LoadedDigests,
} from './digest-journal.ts';
import { HybridClock } from './hlc.ts';
import { RecordCache } from './cache.ts';
import {
  DATA, DIGEST, bucketIndexRange, dataKey, indexKey, indexValue, journalKey, keyspaceRange, metaKey, readIndexValue,
} from './keyspace.ts';
import { BINARY, hasBinaryDefaults, implementorBatches, writeImplementorBatch, type BinaryEncodings, type ImplementorDb, type LevelBatchOp, type LevelChainedBatchLike, type LevelLike } from './level.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { isDead, supersedes } from './merge.ts';
import {
  decodeRecordValue, encodeKey, encodeRecordValue, makeRecord, validateContentType, validateRecordAndKey,
} from './record.ts';
import { COUNTER_MAX, compareVersions, isValidNodeId, isValidVersion } from './version.ts';
import type {
  BatchOp, BucketEntry, Change, PurgeOptions, PutOptions, ScanOptions, ScanPage, Store, StoreStats, StoredRecord, Version,
} from './types.ts';

/**
 * Layout version of the whole keyspace (meta 'format'). Append-only.
 * 1: one digest entry per bucket ('g'). 2: digest pages and a journal
 * (digest-journal.ts); a format-1 store is migrated when opened.
 */
export const STORE_FORMAT = 2;

/** Settings shared by both ways of opening a store. */
export interface StoreSettings {
  /** This node's id; default: the persisted one, else a fresh random one. */
  readonly nodeId?: string;
  /** B, 0..20: the store has 2^B anti-entropy buckets. Default 16; fixed at creation. */
  readonly bucketBits?: number;
  /** Wall clock in epoch ms. Default Date.now. */
  readonly now?: () => number;
  /** Read cache budget in bytes; 0 disables it. Default 8 MiB. */
  readonly cacheSize?: number;
  /** Pass LevelDB's `sync` (fsync the log) on every write batch. Default false. */
  readonly sync?: boolean;
  /** Largest value accepted by put/batch/apply. Default 16 MiB. */
  readonly maxValueBytes?: number;
  /** How far past the wall clock `observe` may move the clock. Default 60 000 ms. */
  readonly maxClockDriftMs?: number;
  /** How far ahead of the clock the persisted high-water mark is set. Default 1000 ms. */
  readonly clockReserveMs?: number;
  /**
   * Read with the database's synchronous `getSync` (abstract-level 3) when it
   * has one, instead of a round trip through the libuv thread pool. Much
   * faster for data in LevelDB's block cache or the OS page cache; a read
   * that has to go to the disk blocks the event loop meanwhile. Default true.
   */
  readonly syncReads?: boolean;
  /** Writes (ops) allowed to wait in the commit queue before new ones fail with BUSY. Default 100 000. */
  readonly maxPendingWrites?: number;
  /**
   * LevelDB's write buffer (memtable) in bytes, for a store opened by
   * `location`. Default 32 MiB (LevelDB's own default is 4 MiB): fewer, larger
   * level-0 files, so compaction keeps up with group-committed writes —
   * measured ~20% less CPU per put with 50 writers. Up to two buffers are in
   * memory at once, and reopening after a crash replays up to one from the log.
   */
  readonly writeBufferSize?: number;
  /**
   * Bytes of digest journal (20 per changed bucket per batch) kept before a
   * batch checkpoints the changed digest pages instead. Bounds what opening
   * after a crash replays. Default 4 MiB; 0 checkpoints every batch.
   */
  readonly digestJournalBytes?: number;
}

export type OpenStoreOptions =
  | (StoreSettings & { readonly location: string; readonly db?: undefined })
  | (StoreSettings & { readonly db: LevelLike; readonly location?: undefined });

const DEFAULT_BUCKET_BITS = 16;
const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;
const DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024;
const DEFAULT_WRITE_BUFFER_BYTES = 32 * 1024 * 1024;
const SCAN_LIMIT_DEFAULT = 100;
const SCAN_LIMIT_MAX = 10_000;
/** Most ops coalesced into one LevelDB batch. */
const GROUP_OPS_MAX = 4096;
/** Batches of at least this many ops are written through a chained batch (see #write). */
const CHAINED_BATCH_MIN_OPS = 16;
const NO_WRITE_OPTIONS = {};
/**
 * A queue of at least this many jobs, met with no write in flight, is taken
 * in two halves (see `#runQueue`).
 */
const SPLIT_MIN_JOBS = 16;
/** bucketEntriesMany reads buckets at most this far apart with one range read. */
const RUN_GAP_BUCKETS = 4;
/** Most index entries one purge step reads, so purging never stalls writes for long. */
const PURGE_SCAN_MAX = 4096;
const EMPTY = new Uint8Array(0);

const metaPackr = new Packr({ useRecords: false });
const COUNTS_KEY = metaKey('counts');
const HLC_KEY = metaKey('hlc');

type LocalOp =
  | { readonly type: 'put'; readonly key: string; readonly keyBytes: Buffer; readonly value: Uint8Array; readonly contentType: string | undefined; readonly ttlMs: number | undefined }
  | { readonly type: 'delete'; readonly key: string; readonly keyBytes: Buffer };

/** abstract-level 3's synchronous read, where the backend has it (`syncReads`). */
interface SyncReader {
  getSync(key: Buffer, options?: BinaryEncodings): Buffer | undefined;
}

interface Deferred<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

type Job =
  /** `single`: one op from put/delete, resolved with its record rather than an array of one. */
  | ({ readonly kind: 'local'; readonly ops: LocalOp[]; readonly single: false } & Deferred<StoredRecord[]>)
  | ({ readonly kind: 'local'; readonly ops: [LocalOp]; readonly single: true } & Deferred<StoredRecord>)
  | ({ readonly kind: 'apply'; readonly records: { readonly record: StoredRecord; readonly keyBytes: Buffer }[] } & Deferred<boolean[]>)
  | ({ readonly kind: 'purge'; readonly beforeMs: number; readonly gte: Buffer; readonly lt: Buffer } & Deferred<{ purged: number; next: Buffer | null }>)
  | ({ readonly kind: 'reserve' } & Deferred<void>);

type GroupJob = Exclude<Job, { kind: 'purge' }>;

/** A group's batch and what to publish once it is written. */
interface PreparedGroup {
  readonly batch: LevelBatchOp[];
  readonly digests: DigestPlan;
  readonly keys: number;
  readonly tombstones: number;
  readonly reservedMs: number;
  readonly changes: Change[];
  readonly results: unknown[];
}

/** A prepared group, and its batch's write once started. */
interface InFlight {
  readonly jobs: GroupJob[];
  readonly touched: Map<string, Touch>;
  readonly commit: PreparedGroup;
  write: Promise<void> | null;
}

/** What one group commit knows about one key it touches. */
interface Touch {
  readonly key: string;
  readonly keyBytes: Buffer;
  readonly dataKey: Buffer;
  /** The record on disk before this group (null = none). */
  committed: StoredRecord | null;
  /** The record after the ops processed so far. */
  current: StoredRecord | null;
  /** `committed`'s hash memo, when the read cache had it. */
  memo: string | undefined;
  /** `current`'s hash memo once the batch is prepared. */
  newMemo: string | undefined;
}

function newTouch(key: string, keyBytes: Buffer): Touch {
  return { key, keyBytes, dataKey: dataKey(keyBytes), committed: null, current: null, memo: undefined, newMemo: undefined };
}

/*
 * A record's hash memo: key hash (8 bytes) ‖ index-entry digest (16 bytes)
 * as a 24-character latin1 string (one char per byte) — about 40 bytes of
 * heap, against some 300 for two Buffers, and straight from `crypto.hash`'s
 * cheapest (latin1) output.
 */

const asIs = <T>(x: T): T => x;

function jobSize(job: Job): number {
  switch (job.kind) {
    case 'local': return job.ops.length;
    case 'apply': return job.records.length;
    case 'purge': return PURGE_SCAN_MAX;
    case 'reserve': return 1;
    default: return assertNever(job);
  }
}

function assertNever(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}

function argError(message: string): StorageError {
  return new StorageError('INVALID_ARGUMENT', message);
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw argError(`${name} must be an integer in [${min}, ${max}]`);
  return v;
}

/**
 * Opens (creating if needed) a store in a directory (`location`, through
 * `level`/classic-level) or in an existing abstract-level database or
 * sublevel (`db`; the caller keeps ownership and closes it).
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (typeof options !== 'object' || options === null) throw argError('options must be an object');
  const hasLocation = options.location !== undefined;
  const hasDb = options.db !== undefined;
  if (hasLocation === hasDb) throw argError('give exactly one of location or db');
  if (hasLocation && (typeof options.location !== 'string' || options.location.length === 0)) throw argError('location must be a non-empty string');
  if (options.nodeId !== undefined && !isValidNodeId(options.nodeId)) {
    throw argError('nodeId must be 1 to 128 characters of A-Z a-z 0-9 . _ : -');
  }
  const bucketBitsOption = options.bucketBits === undefined ? undefined : checkInt('bucketBits', options.bucketBits, 0, BUCKET_BITS_MAX);
  const cacheBytes = checkInt('cacheSize', options.cacheSize ?? DEFAULT_CACHE_BYTES, 0, Number.MAX_SAFE_INTEGER);
  const maxValueBytes = checkInt('maxValueBytes', options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES, 0, 2 ** 31 - 1);
  const maxDriftMs = checkInt('maxClockDriftMs', options.maxClockDriftMs ?? 60_000, 0, Number.MAX_SAFE_INTEGER);
  const reserveMs = checkInt('clockReserveMs', options.clockReserveMs ?? 1000, 2, 3_600_000);
  const maxPending = checkInt('maxPendingWrites', options.maxPendingWrites ?? 100_000, 1, Number.MAX_SAFE_INTEGER);
  const writeBufferSize = checkInt('writeBufferSize', options.writeBufferSize ?? DEFAULT_WRITE_BUFFER_BYTES, 64 * 1024, 2 ** 30);
  const maxJournalBytes = checkInt('digestJournalBytes', options.digestJournalBytes ?? DEFAULT_MAX_JOURNAL_BYTES, 0, 2 ** 31 - 1);
  if (options.now !== undefined && typeof options.now !== 'function') throw argError('now must be a function');
  const wallNow = options.now ?? Date.now;

  const ownsDb = options.db === undefined;
  // Binary default encodings, so the hot calls pass no options (see hasBinaryDefaults).
  const db: LevelLike = options.db ?? (new Level(options.location as string, { ...BINARY, writeBufferSize }) as unknown as LevelLike);
  try {
    await db.open();
    const names = ['format', 'nodeId', 'bucketBits', 'hlc', 'counts', CHECKPOINT_META] as const;
    const raw = await db.getMany(names.map((n) => metaKey(n)), BINARY);
    const meta = raw.map((b, i) => {
      if (b === undefined) return undefined;
      try {
        return metaPackr.unpack(b) as unknown;
      } catch (e) {
        throw new StorageError('CORRUPT_DATA', `meta ${names[i]} does not decode`, { cause: e });
      }
    });
    const [format, storedNodeId, storedBucketBits, storedHlc, storedCounts, storedCheckpoint] = meta;
    if (format !== undefined && format !== 1 && format !== STORE_FORMAT) {
      throw new StorageError('UNSUPPORTED_FORMAT', `store format ${String(format)} is not supported (this code reads ${STORE_FORMAT})`);
    }
    if (storedNodeId !== undefined && !isValidNodeId(storedNodeId)) throw new StorageError('CORRUPT_DATA', 'stored nodeId is malformed');
    if (options.nodeId !== undefined && storedNodeId !== undefined && storedNodeId !== options.nodeId) {
      throw new StorageError('NODE_ID_MISMATCH', `store belongs to node ${String(storedNodeId)}, not ${options.nodeId}`);
    }
    if (storedBucketBits !== undefined && bucketBitsOption !== undefined && storedBucketBits !== bucketBitsOption) {
      throw new StorageError('BUCKET_BITS_MISMATCH', `store has bucketBits ${String(storedBucketBits)}, not ${bucketBitsOption}`);
    }
    const nodeId = (storedNodeId as string | undefined) ?? options.nodeId ?? `n-${randomBytes(6).toString('hex')}`;
    const bucketBits = (storedBucketBits as number | undefined) ?? bucketBitsOption ?? DEFAULT_BUCKET_BITS;
    if (!Number.isInteger(bucketBits) || bucketBits < 0 || bucketBits > BUCKET_BITS_MAX) throw new StorageError('CORRUPT_DATA', 'stored bucketBits is malformed');
    const hw = typeof storedHlc === 'number' && Number.isSafeInteger(storedHlc) ? storedHlc : 0;
    const counts = Array.isArray(storedCounts) ? (storedCounts as number[]) : [0, 0];

    const encodings = hasBinaryDefaults(db) ? undefined : BINARY;
    const checkpointSeq = typeof storedCheckpoint === 'number' && Number.isSafeInteger(storedCheckpoint) && storedCheckpoint >= 0 ? storedCheckpoint : 0;
    // Digests then live in memory: one read of the page keyspace and of the journal since the last checkpoint.
    const loaded = format === 1 ? await migrateFormat1(db, bucketBits) : await loadDigests(db, bucketBits, checkpointSeq, encodings);
    const journal = new DigestJournal(loaded, bucketBits, maxJournalBytes, metaKey(CHECKPOINT_META), COUNTS_KEY, (v) => metaPackr.pack(v));
    const keys = loaded.counts?.keys ?? counts[0] ?? 0;
    const tombstones = loaded.counts?.tombstones ?? counts[1] ?? 0;
    if (journal.dirty) {
      // Opened after a crash: fold the replayed journal into pages now.
      const batch: LevelBatchOp[] = [];
      const plan = journal.plan(batch, new Map(), null, { keys, tombstones }, false, true);
      await db.batch(batch, { ...BINARY, sync: options.sync ?? false });
      journal.publish(plan);
    }
    // Journal entries a checkpoint made obsolete (deleted in the background, maybe not finished before a crash).
    await db.clear({ gte: journalKey(0), lt: journalKey(journal.checkpointSeq + 1), ...BINARY });

    // Start above every stamp the previous run can have issued.
    const clock = new HybridClock(nodeId, wallNow, { ms: hw, counter: COUNTER_MAX }, maxDriftMs);
    const reservedMs = Math.max(hw, clock.wallMs()) + reserveMs;
    await db.batch([
      { type: 'put', key: metaKey('format'), value: metaPackr.pack(STORE_FORMAT) },
      { type: 'put', key: metaKey('nodeId'), value: metaPackr.pack(nodeId) },
      { type: 'put', key: metaKey('bucketBits'), value: metaPackr.pack(bucketBits) },
      { type: 'put', key: metaKey('hlc'), value: metaPackr.pack(reservedMs) },
    ], { ...BINARY, sync: options.sync ?? false });

    return new LevelStore({
      db, ownsDb, nodeId, bucketBits, clock, journal, reservedMs, reserveMs,
      keys, tombstones,
      cache: new RecordCache(cacheBytes), maxValueBytes, maxPending, sync: options.sync ?? false,
      encodings,
      syncReads: options.syncReads !== false && (db.supports as { getSync?: unknown } | undefined)?.getSync === true && typeof db.getSync === 'function',
      direct: implementorBatches(db, ownsDb),
    });
  } catch (e) {
    if (ownsDb) await db.close().catch(() => undefined);
    throw e;
  }
}

interface StoreInit {
  db: LevelLike;
  ownsDb: boolean;
  /** The database's implementor interface, when batches may be written through it (see `implementorBatches`). */
  direct: ImplementorDb | null;
  nodeId: string;
  bucketBits: number;
  clock: HybridClock;
  journal: DigestJournal;
  reservedMs: number;
  reserveMs: number;
  keys: number;
  tombstones: number;
  cache: RecordCache;
  maxValueBytes: number;
  maxPending: number;
  sync: boolean;
  /** Encoding options to pass on each call; undefined when the database's defaults are binary already. */
  encodings: BinaryEncodings | undefined;
  syncReads: boolean;
}

/**
 * The store. Every write (local or replicated, and purge steps) goes through
 * one ordered commit queue: the committer takes all queued jobs (up to
 * GROUP_OPS_MAX ops), reads the current records of their keys once, applies
 * the ops in queue order in memory, and writes data, index entries, bucket
 * digests and meta in ONE LevelDB batch. So concurrent writes to one key are
 * serialized, data and index never disagree (the batch is atomic, also under
 * kill -9), and concurrent writers share batches (group commit).
 */
class LevelStore implements Store {
  readonly nodeId: string;
  readonly bucketBits: number;
  readonly #db: LevelLike;
  readonly #ownsDb: boolean;
  readonly #direct: ImplementorDb | null;
  readonly #clock: HybridClock;
  readonly #journal: DigestJournal;
  /** Deletion of journal entries the last checkpoint made obsolete. */
  #clearing: Promise<void> = Promise.resolve();
  readonly #cache: RecordCache;
  readonly #listeners = new Set<(change: Change) => void>();
  readonly #maxValueBytes: number;
  readonly #maxPending: number;
  readonly #reserveMs: number;
  readonly #syncReads: boolean;
  readonly #encodings: BinaryEncodings | undefined;
  readonly #writeOptions: { readonly sync: true } | undefined;
  #reservedMs: number;
  #reservePending = false;
  #keys: number;
  #tombstones: number;
  #queue: Job[] = [];
  #pendingOps = 0;
  #drain: Promise<void> | null = null;
  /** Bumped after every commit; a read that saw it change must not fill the cache. */
  #commitSeq = 0;
  #closing = false;
  #closed: Promise<void> | null = null;

  constructor(init: StoreInit) {
    this.#db = init.db;
    this.#ownsDb = init.ownsDb;
    this.#direct = init.direct;
    this.nodeId = init.nodeId;
    this.bucketBits = init.bucketBits;
    this.#clock = init.clock;
    this.#journal = init.journal;
    this.#reservedMs = init.reservedMs;
    this.#reserveMs = init.reserveMs;
    this.#keys = init.keys;
    this.#tombstones = init.tombstones;
    this.#cache = init.cache;
    this.#maxValueBytes = init.maxValueBytes;
    this.#maxPending = init.maxPending;
    this.#syncReads = init.syncReads;
    this.#encodings = init.encodings;
    this.#writeOptions = init.sync ? { sync: true } : undefined;
  }

  // ---- local writes ----

  put(key: string, value: Uint8Array | string, options?: PutOptions): Promise<StoredRecord> {
    let op: LocalOp;
    try {
      op = this.#localPut(key, value, options?.contentType, options?.ttlMs, options?.adoptValue === true);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#enqueueOne(op);
  }

  delete(key: string): Promise<StoredRecord> {
    let op: LocalOp;
    try {
      this.#checkOpen();
      op = { type: 'delete', key, keyBytes: encodeKey(key) };
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#enqueueOne(op);
  }

  /**
   * One op as its own job; resolves with its record directly (no extra
   * promise hop, and no wrapper closure per write: tsx's keepNames would
   * wrap that closure in a `__name` call, ~2% of a put's CPU).
   */
  #enqueueOne(op: LocalOp): Promise<StoredRecord> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'local', ops: [op], single: true, resolve, reject }));
  }

  async batch(ops: readonly BatchOp[]): Promise<StoredRecord[]> {
    this.#checkOpen();
    if (!Array.isArray(ops)) throw argError('batch takes an array of ops');
    if (ops.length === 0) return [];
    const local = ops.map((op): LocalOp => {
      if (typeof op !== 'object' || op === null) throw argError('batch op must be an object');
      if (op.type === 'put') return this.#localPut(op.key, op.value, op.contentType, op.ttlMs);
      if (op.type === 'delete') return { type: 'delete', key: op.key, keyBytes: encodeKey(op.key) };
      throw argError(`unknown batch op type ${JSON.stringify((op as { type?: unknown }).type)}`);
    });
    return this.#enqueueLocal(local);
  }

  #localPut(key: string, value: unknown, contentType: unknown, ttlMs: unknown, adopt = false): LocalOp {
    this.#checkOpen();
    const keyBytes = encodeKey(key);
    let bytes: Uint8Array;
    if (typeof value === 'string') bytes = new Uint8Array(Buffer.from(value, 'utf8'));
    // Copy, so a caller reusing its buffer cannot change what we stored or cached (unless it handed the buffer over).
    else if (value instanceof Uint8Array) bytes = adopt ? value : new Uint8Array(value);
    else throw new StorageError('INVALID_VALUE', 'value must be a Uint8Array or a string');
    if (bytes.length > this.#maxValueBytes) throw new StorageError('VALUE_TOO_LARGE', `value is longer than ${this.#maxValueBytes} bytes`);
    if (contentType !== undefined) validateContentType(contentType);
    if (ttlMs !== undefined && !(typeof ttlMs === 'number' && Number.isSafeInteger(ttlMs) && ttlMs > 0)) {
      throw argError('ttlMs must be a positive integer');
    }
    return { type: 'put', key, keyBytes, value: bytes, contentType: contentType as string | undefined, ttlMs: ttlMs as number | undefined };
  }

  #enqueueLocal(ops: LocalOp[]): Promise<StoredRecord[]> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'local', ops, single: false, resolve, reject }));
  }

  // ---- replicated writes ----

  async apply(record: StoredRecord): Promise<boolean> {
    const [changed] = await this.applyMany([record]);
    return changed as boolean;
  }

  async applyMany(records: readonly StoredRecord[]): Promise<boolean[]> {
    this.#checkOpen();
    if (!Array.isArray(records)) throw new StorageError('INVALID_RECORD', 'applyMany takes an array of records');
    if (records.length === 0) return [];
    const checked = records.map((r) => {
      const checked = validateRecordAndKey(r);
      if (checked.record.value.length > this.#maxValueBytes) throw new StorageError('VALUE_TOO_LARGE', `value is longer than ${this.#maxValueBytes} bytes`);
      return checked;
    });
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'apply', records: checked, resolve, reject }));
  }

  // ---- reads ----

  get(key: string): Promise<StoredRecord | undefined> {
    return this.#answer(key, this.#live);
  }

  getRecordNow(key: string): StoredRecord | undefined | null {
    return this.#getNow(key);
  }

  getRecord(key: string): Promise<StoredRecord | undefined> {
    return this.#answer(key, asIs);
  }

  /** A record as `get` answers it: absent when deleted or expired. */
  readonly #live = (r: StoredRecord | undefined): StoredRecord | undefined =>
    (r === undefined || isDead(r, this.#clock.wallMs()) ? undefined : r);

  /** One key, with no extra promise hop when #getNow can answer it. */
  #answer(key: string, map: (r: StoredRecord | undefined) => StoredRecord | undefined): Promise<StoredRecord | undefined> {
    let r: StoredRecord | undefined | null;
    try {
      r = this.#getNow(key);
    } catch (e) {
      return Promise.reject(e);
    }
    if (r === null) return this.getRecords([key]).then((records) => map(records[0]));
    return Promise.resolve(map(r));
  }

  /**
   * One key without a promise hop when it can be answered now: from the
   * cache (a cached key is valid, so it is not validated again) or with a
   * synchronous read. null: it needs an asynchronous read (getRecords).
   */
  #getNow(key: string): StoredRecord | undefined | null {
    this.#checkOpen();
    const c = typeof key === 'string' ? this.#cache.get(key) : undefined;
    if (c !== undefined) return c ?? undefined;
    const keyBytes = encodeKey(key);
    if (!this.#syncReads) return null;
    const v = (this.#db as unknown as SyncReader).getSync(dataKey(keyBytes), this.#encodings);
    const r = v === undefined ? null : decodeRecordValue(key, v);
    this.#cache.set(key, r);
    return r ?? undefined;
  }

  async getRecords(keys: readonly string[]): Promise<(StoredRecord | undefined)[]> {
    this.#checkOpen();
    if (!Array.isArray(keys)) throw argError('getRecords takes an array of keys');
    const encoded = keys.map((k) => encodeKey(k));
    const out: (StoredRecord | undefined)[] = new Array(keys.length);
    const missIndexes: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const c = this.#cache.get(keys[i] as string);
      if (c === undefined) missIndexes.push(i);
      else out[i] = c ?? undefined;
    }
    if (missIndexes.length === 0) return out;
    const seq = this.#commitSeq;
    // A synchronous read is never older than the last commit, so it may always fill the cache.
    const read = this.#read(missIndexes.map((i) => dataKey(encoded[i] as Buffer)));
    const values = Array.isArray(read) ? read : await read;
    const fill = this.#syncReads || seq === this.#commitSeq;
    for (let j = 0; j < missIndexes.length; j++) {
      const i = missIndexes[j] as number;
      const key = keys[i] as string;
      const v = values[j];
      const r = v === undefined ? null : decodeRecordValue(key, v);
      if (fill) this.#cache.set(key, r);
      out[i] = r ?? undefined;
    }
    return out;
  }

  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    this.#checkOpen();
    if (typeof options !== 'object' || options === null) throw argError('scan options must be an object');
    const limit = checkInt('limit', options.limit ?? SCAN_LIMIT_DEFAULT, 1, SCAN_LIMIT_MAX);
    let lower: Buffer = Buffer.of(DATA);
    let upper: Buffer = Buffer.of(DATA + 1);
    const raise = (b: Buffer): void => { if (Buffer.compare(b, lower) > 0) lower = b; };
    const cap = (b: Buffer): void => { if (Buffer.compare(b, upper) < 0) upper = b; };
    if (options.prefix !== undefined) {
      if (typeof options.prefix !== 'string') throw argError('prefix must be a string');
      const p = dataKey(Buffer.from(options.prefix, 'utf8'));
      raise(p);
      // No UTF-8 byte is 0xff, so prefix ‖ 0xff is above every key with the prefix.
      cap(Buffer.concat([p, Buffer.of(0xff)]));
    }
    if (options.gte !== undefined) {
      if (typeof options.gte !== 'string') throw argError('gte must be a string');
      raise(dataKey(Buffer.from(options.gte, 'utf8')));
    }
    if (options.lt !== undefined) {
      if (typeof options.lt !== 'string') throw argError('lt must be a string');
      cap(dataKey(Buffer.from(options.lt, 'utf8')));
    }
    if (options.cursor !== undefined && options.cursor !== null) {
      // The smallest key above the cursor key is the cursor key ‖ 0x00.
      raise(Buffer.concat([dataKey(Buffer.from(decodeCursor(options.cursor), 'utf8')), Buffer.of(0)]));
    }
    const records: StoredRecord[] = [];
    if (Buffer.compare(lower, upper) >= 0) return { records, next: null };
    const includeDead = options.includeTombstones === true;
    const nowMs = this.#clock.wallMs();
    const it = this.#db.iterator({ gte: lower, lt: upper, ...this.#encodings });
    try {
      for (;;) {
        const entries = await it.nextv(Math.min(1000, limit + 1));
        if (entries.length === 0) return { records, next: null };
        for (const [k, v] of entries) {
          const r = decodeRecordValue(k.toString('utf8', 1), v);
          if (!includeDead && isDead(r, nowMs)) continue;
          if (records.length === limit) {
            // There is at least one more; the page ends here.
            return { records, next: encodeCursor((records[records.length - 1] as StoredRecord).key) };
          }
          records.push(r);
        }
      }
    } finally {
      await it.close();
    }
  }

  subscribe(listener: (change: Change) => void): () => void {
    if (typeof listener !== 'function') throw argError('listener must be a function');
    const wrapped = (change: Change): void => listener(change);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  // ---- anti-entropy index ----

  async bucketDigests(from: number, to: number): Promise<Uint8Array[]> {
    this.#checkOpen();
    const n = 2 ** this.bucketBits;
    checkInt('from', from, 0, n);
    checkInt('to', to, from, n);
    const out: Uint8Array[] = [];
    const digests = this.#journal.digests;
    for (let b = from; b < to; b++) out.push(digests.slice(b * DIGEST_BYTES, (b + 1) * DIGEST_BYTES));
    return out;
  }

  async bucketEntries(bucket: number): Promise<BucketEntry[]> {
    const [entries] = await this.bucketEntriesMany([bucket]);
    return entries as BucketEntry[];
  }

  async bucketEntriesMany(buckets: readonly number[]): Promise<BucketEntry[][]> {
    this.#checkOpen();
    if (!Array.isArray(buckets)) throw argError('bucketEntriesMany takes an array of buckets');
    const last = 2 ** this.bucketBits - 1;
    const wanted = new Map<number, BucketEntry[]>();
    for (const b of buckets) wanted.set(checkInt('bucket', b, 0, last), []);
    const sorted = [...wanted.keys()].sort((x, y) => x - y);
    // Runs of buckets at most RUN_GAP_BUCKETS apart: reading a few unwanted ones is cheaper than another range read.
    for (let i = 0; i < sorted.length;) {
      let j = i;
      while (j + 1 < sorted.length && (sorted[j + 1] as number) - (sorted[j] as number) <= RUN_GAP_BUCKETS) j++;
      const from = sorted[i] as number;
      const to = (sorted[j] as number) + 1;
      const it = this.#db.iterator({ ...bucketIndexRange(from, to, this.bucketBits), ...this.#encodings });
      try {
        for (;;) {
          const chunk = await it.nextv(1000);
          if (chunk.length === 0) break;
          for (const [k, v] of chunk) {
            const list = wanted.get(bucketOfHashBytes(k, 1, this.bucketBits));
            if (list === undefined) continue;
            const { tombstone, version } = readIndexValue(v);
            list.push({ key: k.toString('utf8', 9), keyHash: k.readBigUInt64BE(1), version, tombstone });
          }
        }
      } finally {
        await it.close();
      }
      i = j + 1;
    }
    const given = new Set<number>();
    return buckets.map((b) => {
      const list = wanted.get(b) as BucketEntry[];
      if (given.has(b)) return list.slice();
      given.add(b);
      return list;
    });
  }

  async purgeTombstones(options: PurgeOptions): Promise<number> {
    this.#checkOpen();
    if (typeof options !== 'object' || options === null) throw argError('purge options must be an object');
    const n = 2 ** this.bucketBits;
    const beforeMs = options.beforeMs;
    if (typeof beforeMs !== 'number' || Number.isNaN(beforeMs)) throw argError('beforeMs must be a number');
    const from = checkInt('fromBucket', options.fromBucket ?? 0, 0, n);
    const to = checkInt('toBucket', options.toBucket ?? n, from, n);
    const range = bucketIndexRange(from, to, this.bucketBits);
    let gte: Buffer = range.gte;
    const lt: Buffer = range.lt;
    let purged = 0;
    while (Buffer.compare(gte, lt) < 0) {
      const step = await new Promise<{ purged: number; next: Buffer | null }>((resolve, reject) =>
        this.#enqueue({ kind: 'purge', beforeMs, gte, lt, resolve, reject }));
      purged += step.purged;
      if (step.next === null) break;
      gte = step.next;
    }
    return purged;
  }

  // ---- clock ----

  observe(version: Version): void {
    if (!isValidVersion(version)) throw new StorageError('INVALID_RECORD', 'observe takes a valid version');
    this.#clock.observe(version);
    this.#maybeReserve();
  }

  now(): Version {
    this.#checkOpen();
    const v = this.#clock.now();
    this.#maybeReserve();
    return v;
  }

  /** Persists a new clock high-water mark in the background when the clock nears the old one. */
  #maybeReserve(): void {
    if (this.#reservePending || this.#closing || !this.#needsReservation()) return;
    this.#reservePending = true;
    new Promise<void>((resolve, reject) => this.#enqueue({ kind: 'reserve', resolve, reject }))
      .catch(() => undefined)
      .finally(() => { this.#reservePending = false; });
  }

  /** Whether the clock nears the persisted high-water mark (`reservedMs`: the one that will be persisted). */
  #needsReservation(reservedMs = this.#reservedMs): boolean {
    return this.#clock.lastMs + this.#reserveMs / 2 > reservedMs;
  }

  stats(): StoreStats {
    return { keys: this.#keys, tombstones: this.#tombstones, bucketBits: this.bucketBits };
  }

  close(): Promise<void> {
    if (this.#closed === null) {
      this.#closing = true;
      this.#closed = (async () => {
        while (this.#drain !== null) await this.#drain;
        if (this.#journal.dirty) {
          // A cleanly closed store has no journal to replay.
          const batch: LevelBatchOp[] = [];
          const plan = this.#journal.plan(batch, new Map(), null, { keys: this.#keys, tombstones: this.#tombstones }, false, true);
          await this.#write(batch).then(() => this.#publishDigests(plan), () => undefined);
        }
        await this.#clearing;
        this.#listeners.clear();
        this.#cache.clear();
        if (this.#ownsDb) await this.#db.close();
      })();
    }
    return this.#closed;
  }

  #read(keys: Buffer[]): Promise<(Buffer | undefined)[]> | (Buffer | undefined)[] {
    if (!this.#syncReads) return this.#db.getMany(keys, this.#encodings ?? BINARY);
    const db = this.#db as unknown as SyncReader;
    const enc = this.#encodings;
    return keys.map((k) => db.getSync(k, enc));
  }

  /**
   * Writes ops as one atomic LevelDB batch. To a database the store opened,
   * through its implementor interface (`implementorBatches`). Else with no
   * per-op options: abstract-level copies array-batch options into every op
   * (~10 µs CPU per entry on classic-level). Small batches go as an array
   * batch (a chained batch's write costs ~20 µs more up front); larger ones,
   * and any that needs options (encodings, sync), through a chained batch
   * (~1 µs less per entry).
   */
  #write(ops: LevelBatchOp[]): Promise<void> {
    const direct = this.#direct;
    // Not open (never expected): the public path below answers with abstract-level's error.
    if (direct !== null && this.#db.status === 'open') return writeImplementorBatch(direct, ops, this.#writeOptions ?? NO_WRITE_OPTIONS);
    const enc = this.#encodings;
    if (ops.length < CHAINED_BATCH_MIN_OPS && enc === undefined && this.#writeOptions === undefined) {
      return (this.#db as unknown as { batch(ops: LevelBatchOp[]): Promise<void> }).batch(ops);
    }
    const b = (this.#db as unknown as { batch(): LevelChainedBatchLike }).batch();
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value, enc);
      else b.del(op.key, enc);
    }
    return b.write(this.#writeOptions);
  }

  #checkOpen(): void {
    if (this.#closing) throw new StorageError('STORE_CLOSED', 'the store is closed');
  }

  // ---- the commit queue ----

  #enqueue(job: Job): void {
    if (this.#closing && job.kind !== 'reserve') {
      job.reject(new StorageError('STORE_CLOSED', 'the store is closed'));
      return;
    }
    const size = jobSize(job);
    if (this.#pendingOps > 0 && this.#pendingOps + size > this.#maxPending) {
      job.reject(new StorageError('BUSY', `more than ${this.#maxPending} writes are queued`));
      return;
    }
    this.#queue.push(job);
    this.#pendingOps += size;
    if (this.#drain === null) this.#drain = this.#runQueue();
  }

  /**
   * Runs until the queue is empty and no write is in flight. `#drain` is
   * cleared in the same tick as the last emptiness check, so a job enqueued
   * later always starts a new run.
   *
   * Pipelined: while one group's batch is written by LevelDB (on the libuv
   * thread pool), the next group is prepared in JavaScript on top of the
   * state that write will leave (`prev` below): jobs that arrive while a
   * batch is written are read, stamped and encoded meanwhile. Batches are
   * still written one at a time, in queue order. If a write fails, the
   * group prepared on top of it goes back to the head of the queue, to be
   * prepared again from what is really on disk.
   *
   * Concurrent writers keep the pipeline fed only if their puts do not all
   * land in one group: N writers awaiting their puts all wait on the batch
   * in flight, and queue their next puts together when it lands. So a queue
   * of at least SPLIT_MIN_JOBS met with nothing in flight is taken in two
   * halves; the second half is prepared while the first is written, and from
   * then on the two halves' writers alternate. LevelDB's write of a batch
   * (~7 µs CPU a put, on its own thread) is longer than preparing it (~5 µs),
   * so the main thread was idle ~60% of the time before: 50 writers went
   * from 44-48k to 61-69k puts/s (same-process A/B, docs/storage.md). Below
   * the threshold a half's write is too short to cover the extra batch.
   */
  async #runQueue(): Promise<void> {
    // Let the caller store the promise in #drain before anything can clear it.
    await Promise.resolve();
    let inflight: InFlight | null = null;
    try {
      while (this.#queue.length > 0 || inflight !== null) {
        if (inflight !== null && (this.#queue.length === 0 || (this.#queue[0] as Job).kind === 'purge')) {
          // Nothing to prepare meanwhile (a purge step runs alone): finish the write in flight.
          await this.#finish(inflight);
          inflight = null;
          continue;
        }
        // With nothing in flight, a long queue goes out in two halves: the second is prepared while the first is written.
        const group = this.#takeGroup(inflight === null && this.#queue.length >= SPLIT_MIN_JOBS ? this.#queue.length >> 1 : Infinity);
        const first = group[0] as Job;
        if (first.kind === 'purge') {
          try {
            await this.#commitPurge(first);
          } catch (e) {
            first.reject(e);
          }
          continue;
        }
        const jobs = group as GroupJob[];
        let next: InFlight;
        try {
          next = await this.#prepare(jobs, inflight);
        } catch (e) {
          for (const job of jobs) job.reject(e);
          continue;
        }
        if (inflight !== null) {
          const ok = await this.#finish(inflight);
          inflight = null;
          if (!ok) {
            this.#requeue(jobs);
            continue;
          }
        }
        if (next.commit.batch.length === 0) {
          this.#publishGroup(next.jobs, next.touched, next.commit);
          continue;
        }
        next.write = this.#write(next.commit.batch);
        // Awaited by #finish; never an unhandled rejection meanwhile.
        next.write.catch(() => undefined);
        inflight = next;
        // Let the writers the last publish woke up queue their next writes before we look.
        await Promise.resolve();
      }
    } finally {
      this.#drain = null;
    }
  }

  /** Reads what a group's keys hold (before it, after `prev`) and prepares its batch. */
  async #prepare(jobs: GroupJob[], prev: InFlight | null): Promise<InFlight> {
    const touched = this.#touch(jobs);
    const misses: Touch[] = [];
    for (const t of touched.values()) {
      const p = prev?.touched.get(t.key);
      if (p !== undefined) {
        t.committed = t.current = p.current;
        t.memo = p.current === p.committed ? p.memo : p.newMemo;
        continue;
      }
      const c = this.#cache.entry(t.key);
      if (c === undefined) misses.push(t);
      else {
        t.committed = t.current = c.record;
        t.memo = c.memo;
      }
    }
    if (misses.length > 0) {
      // Keys the write in flight does not touch: what is on disk is what it will leave.
      const read = this.#read(misses.map((t) => t.dataKey));
      const values = Array.isArray(read) ? read : await read;
      for (let i = 0; i < misses.length; i++) {
        const t = misses[i] as Touch;
        const v = values[i];
        t.committed = t.current = v === undefined ? null : decodeRecordValue(t.key, v);
      }
    }
    return { jobs, touched, commit: this.#prepareGroup(jobs, touched, prev?.commit ?? null), write: null };
  }

  /** Waits for a group's write; publishes it (true) or fails its jobs (false). */
  async #finish(group: InFlight): Promise<boolean> {
    try {
      await group.write;
    } catch (e) {
      for (const job of group.jobs) job.reject(e);
      return false;
    }
    this.#publishGroup(group.jobs, group.touched, group.commit);
    return true;
  }

  /** Puts jobs taken by #takeGroup back at the head of the queue, in order. */
  #requeue(jobs: GroupJob[]): void {
    this.#queue.unshift(...jobs);
    for (const job of jobs) this.#pendingOps += jobSize(job);
  }

  /** Takes the next group off the queue: a purge step alone, else queued jobs up to GROUP_OPS_MAX ops. */
  #takeGroup(maxJobs: number): Job[] {
    const first = this.#queue[0] as Job;
    let n = 1;
    let ops = jobSize(first);
    if (first.kind !== 'purge') {
      while (n < this.#queue.length && n < maxJobs) {
        const next = this.#queue[n] as Job;
        if (next.kind === 'purge' || ops + jobSize(next) > GROUP_OPS_MAX) break;
        ops += jobSize(next);
        n++;
      }
    }
    this.#pendingOps -= ops;
    if (n === this.#queue.length) {
      const group = this.#queue;
      this.#queue = [];
      return group;
    }
    return this.#queue.splice(0, n);
  }

  /** One Touch per key the group writes (committed/current filled in by the caller). */
  #touch(jobs: GroupJob[]): Map<string, Touch> {
    const touched = new Map<string, Touch>();
    for (const job of jobs) {
      if (job.kind === 'local') {
        for (const op of job.ops) {
          if (!touched.has(op.key)) touched.set(op.key, newTouch(op.key, op.keyBytes));
        }
      } else if (job.kind === 'apply') {
        for (const r of job.records) {
          if (!touched.has(r.record.key)) touched.set(r.record.key, newTouch(r.record.key, r.keyBytes));
        }
      }
    }
    return touched;
  }

  /**
   * Applies the group's ops in queue order in memory and builds its one
   * LevelDB batch: data, index, digests, counts, clock mark. `prev`: the
   * group whose write is in flight (null: none); this one builds on the
   * digests, counts and clock mark that write will leave.
   */
  #prepareGroup(jobs: GroupJob[], touched: Map<string, Touch>, prev: PreparedGroup | null): PreparedGroup {
    const changes: Change[] = [];
    const results: unknown[] = [];
    const wallMs = this.#clock.wallMs();
    let reserve = false;
    for (const job of jobs) {
      if (job.kind === 'local') {
        const out: StoredRecord[] = [];
        for (const op of job.ops) {
          const t = touched.get(op.key) as Touch;
          const prev = t.current;
          let version = this.#clock.now();
          // A stored version above our clock (a remote clock far ahead): stamp just past it, so the write still wins.
          if (prev !== null && compareVersions(version, prev.version) <= 0) version = this.#clock.after(prev.version);
          const record = op.type === 'put'
            ? makeRecord(op.key, op.value, version, false, op.contentType, op.ttlMs === undefined ? undefined : wallMs + op.ttlMs)
            : makeRecord(op.key, EMPTY, version, true, undefined, undefined);
          t.current = record;
          changes.push(prev === null ? { record, origin: 'local' } : { record, previous: prev, origin: 'local' });
          out.push(record);
        }
        results.push(job.single ? out[0] : out);
      } else if (job.kind === 'apply') {
        const out: boolean[] = [];
        for (const { record } of job.records) {
          this.#clock.observe(record.version);
          const t = touched.get(record.key) as Touch;
          const prev = t.current;
          if (supersedes(record, prev)) {
            t.current = record;
            changes.push(prev === null ? { record, origin: 'replicated' } : { record, previous: prev, origin: 'replicated' });
            out.push(true);
          } else {
            out.push(false);
          }
        }
        results.push(out);
      } else {
        reserve = true;
        results.push(undefined);
      }
    }

    const batch: LevelBatchOp[] = [];
    const staged = new Map<number, Buffer>();
    const baseKeys = prev === null ? this.#keys : prev.keys;
    const baseTombstones = prev === null ? this.#tombstones : prev.tombstones;
    let keys = baseKeys;
    let tombstones = baseTombstones;
    for (const t of touched.values()) {
      const cur = t.current;
      if (cur === t.committed || cur === null) continue;
      const old = t.committed;
      const oldHashes = t.memo;
      const keyHash = oldHashes ?? sha256Latin1(t.keyBytes);
      const ik = indexKey(keyHash, t.keyBytes);
      const iv = indexValue(cur.tombstone, cur.version);
      batch.push({ type: 'put', key: t.dataKey, value: encodeRecordValue(cur) });
      batch.push({ type: 'put', key: ik, value: iv });
      const bucket = bucketOfHashBytes(ik, 1, this.bucketBits);
      let d = staged.get(bucket);
      if (d === undefined) {
        d = this.#journal.stage(bucket, prev?.digests ?? null);
        staged.set(bucket, d);
      }
      if (old !== null) {
        if (oldHashes === undefined) xorLatin1Into(d, entryDigestLatin1(t.keyBytes, indexValue(old.tombstone, old.version)), 0);
        else xorLatin1Into(d, oldHashes, 8);
        if (old.tombstone) tombstones--;
        else keys--;
      }
      const entry = entryDigestLatin1(t.keyBytes, iv);
      xorLatin1Into(d, entry, 0);
      t.newMemo = keyHash.slice(0, 8) + entry.slice(0, DIGEST_BYTES);
      if (cur.tombstone) tombstones++;
      else keys++;
    }
    // The counters change only when a key appears or flips between live and tombstone, not on
    // an overwrite; then the journal entry carries them (no separate meta entry).
    const digests = this.#journal.plan(batch, staged, prev?.digests ?? null, { keys, tombstones }, keys !== baseKeys || tombstones !== baseTombstones);
    let reservedMs = prev === null ? this.#reservedMs : prev.reservedMs;
    if (reserve || this.#needsReservation(reservedMs)) {
      reservedMs = Math.max(reservedMs, this.#clock.lastMs + this.#reserveMs);
      batch.push({ type: 'put', key: HLC_KEY, value: metaPackr.pack(reservedMs) });
    }
    return { batch, digests, keys, tombstones, reservedMs, changes, results };
  }

  /** After the group's batch is written: publish to memory, then tell waiters and listeners. */
  #publishGroup(jobs: GroupJob[], touched: Map<string, Touch>, commit: PreparedGroup): void {
    this.#publishDigests(commit.digests);
    this.#keys = commit.keys;
    this.#tombstones = commit.tombstones;
    this.#reservedMs = commit.reservedMs;
    for (const t of touched.values()) {
      // A key this group created is not cached (it was not there before): writes of
      // new keys — a bulk load — would otherwise evict the working set and churn the
      // GC. Every other key's entry is replaced, so the cache never holds a stale record.
      if (t.committed === null && !this.#cache.has(t.key)) continue;
      this.#cache.set(t.key, t.current, t.current === t.committed ? t.memo : t.newMemo);
    }
    this.#commitSeq++;
    for (let i = 0; i < jobs.length; i++) ((jobs[i] as GroupJob).resolve as (v: unknown) => void)(commit.results[i]);
    this.#emit(commit.changes);
  }

  async #commitPurge(job: Extract<Job, { kind: 'purge' }>): Promise<void> {
    const it = this.#db.iterator({ gte: job.gte, lt: job.lt, limit: PURGE_SCAN_MAX, ...this.#encodings });
    let entries: [Buffer, Buffer][];
    try {
      entries = await it.all();
    } finally {
      await it.close().catch(() => undefined);
    }
    const batch: LevelBatchOp[] = [];
    const staged = new Map<number, Buffer>();
    const purgedKeys: string[] = [];
    for (const [k, v] of entries) {
      const { tombstone, version } = readIndexValue(v);
      if (!tombstone || version.ms >= job.beforeMs) continue;
      const keyBytes = k.subarray(9);
      batch.push({ type: 'del', key: dataKey(keyBytes) }, { type: 'del', key: k });
      const bucket = bucketOfHashBytes(k, 1, this.bucketBits);
      let d = staged.get(bucket);
      if (d === undefined) {
        d = this.#journal.stage(bucket, null);
        staged.set(bucket, d);
      }
      xorDigestInto(d, 0, entryDigest(keyBytes, v));
      purgedKeys.push(keyBytes.toString('utf8'));
    }
    const tombstones = this.#tombstones - purgedKeys.length;
    if (batch.length > 0) {
      const digests = this.#journal.plan(batch, staged, null, { keys: this.#keys, tombstones }, true);
      await this.#write(batch);
      this.#publishDigests(digests);
      this.#tombstones = tombstones;
      for (const key of purgedKeys) this.#cache.set(key, null);
      this.#commitSeq++;
    }
    const last = entries[entries.length - 1];
    job.resolve({
      purged: purgedKeys.length,
      next: entries.length < PURGE_SCAN_MAX || last === undefined ? null : Buffer.concat([last[0], Buffer.of(0)]),
    });
  }

  /** After a batch is written: its digests become the digests; a checkpoint's obsolete journal is deleted in the background. */
  #publishDigests(plan: DigestPlan): void {
    if (!this.#journal.publish(plan)) return;
    const lt = journalKey(this.#journal.checkpointSeq + 1);
    const db = this.#db;
    this.#clearing = this.#clearing.then(() => db.clear({ gte: journalKey(0), lt, ...this.#encodings })).catch(() => undefined);
  }

  #emit(changes: Change[]): void {
    if (this.#listeners.size === 0) return;
    for (const change of changes) {
      for (const listener of this.#listeners) {
        try {
          listener(change);
        } catch {
          // A listener's failure must not fail a write that is already committed.
        }
      }
    }
  }
}

/**
 * Format 1 kept one digest entry per bucket ('g'). Rewrites them as pages
 * (format 2) in one batch, with the checkpoint mark and the new format.
 */
async function migrateFormat1(db: LevelLike, bucketBits: number): Promise<LoadedDigests> {
  const n = 2 ** bucketBits;
  const digests = new Uint8Array(n * DIGEST_BYTES);
  const batch: LevelBatchOp[] = [];
  for (const [k, v] of await db.iterator({ ...keyspaceRange(DIGEST), ...BINARY }).all()) {
    const bucket = k.length === 5 ? k.readUInt32BE(1) : -1;
    if (bucket < 0 || bucket >= n || v.length !== DIGEST_BYTES) throw new StorageError('CORRUPT_DATA', 'malformed digest entry');
    digests.set(v, bucket * DIGEST_BYTES);
    batch.push({ type: 'del', key: k });
  }
  batch.push(...allPages(digests, bucketBits));
  batch.push({ type: 'put', key: metaKey(CHECKPOINT_META), value: metaPackr.pack(0) });
  batch.push({ type: 'put', key: metaKey('format'), value: metaPackr.pack(STORE_FORMAT) });
  await db.batch(batch, BINARY);
  return { digests, lastSeq: 0, checkpointSeq: 0, counts: undefined, dirtyPages: new Set(), journalBytes: 0 };
}
