import { argError, checkInt, checkOptionalString } from './args.ts';
import { readBucketEntries } from './bucket-entries.ts';
import { RecordCache } from './cache.ts';
import { ClockBound } from './clock-bound.ts';
import { CommitQueue } from './commit-queue.ts';
import { GroupCommitter } from './committer.ts';
import { StorageError } from './errors.ts';
import { DIGEST_BYTES } from './hash.ts';
import type { HybridClock } from './hlc.ts';
import type { DigestJournal } from './digest-journal.ts';
import type { ApplyRecord, LocalOp, PurgeStep } from './jobs.ts';
import { bucketIndexRange } from './keyspace.ts';
import { BatchWriter, syncReaderOf, type BinaryEncodings, type LevelLike } from './level.ts';
import { isDead } from './merge.ts';
import { openDatabase } from './open.ts';
import { RecordReader } from './reader.ts';
import { encodeKey, validateContentType, validateRecordAndKey } from './record.ts';
import { scanPage, scanRange } from './scan.ts';
import { resolveSettings, type OpenStoreOptions } from './settings.ts';
import type {
  ApplyOutcome, BatchOp, BucketEntry, Change, ClockStatus, DropRangeOptions, PurgeOptions, PutOptions, ScanOptions, ScanPage, Store, StoreStats, StoredRecord, Version,
} from './types.ts';
import { isValidVersion } from './version.ts';

export { STORE_FORMAT } from './format.ts';
export type { OpenStoreOptions, StoreSettings } from './settings.ts';

const SCAN_LIMIT_DEFAULT = 100;
const SCAN_LIMIT_MAX = 10_000;

/**
 * Opens (creating if needed) a store in a directory (`location`, through
 * `level`/classic-level) or in an existing abstract-level database or
 * sublevel (`db`; the caller keeps ownership and closes it).
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const settings = resolveSettings(options);
  const opened = await openDatabase(settings);
  const { db, encodings, clock } = opened;
  const bound = new ClockBound(clock);
  const cache = new RecordCache(settings.cacheBytes);
  const reader = new RecordReader(db, encodings, cache, settings.syncReads ? syncReaderOf(db) : null);
  const committer = new GroupCommitter({
    db,
    encodings,
    writer: new BatchWriter(db, opened.ownsDb, encodings, settings.sync),
    reader,
    cache,
    clock,
    bound,
    journal: opened.journal,
    bucketBits: opened.bucketBits,
    reserveMs: settings.clockReserveMs,
    reservedMs: opened.reservedMs,
    counts: opened.counts,
  });
  return new LevelStore({
    db, ownsDb: opened.ownsDb, encodings, nodeId: opened.nodeId, bucketBits: opened.bucketBits, clock, bound, journal: opened.journal,
    cache, reader, committer, queue: new CommitQueue(committer, settings.maxPendingWrites), maxValueBytes: settings.maxValueBytes,
  });
}

interface StoreParts {
  readonly db: LevelLike;
  readonly ownsDb: boolean;
  readonly encodings: BinaryEncodings | undefined;
  readonly nodeId: string;
  readonly bucketBits: number;
  readonly clock: HybridClock;
  readonly bound: ClockBound;
  readonly journal: DigestJournal;
  readonly cache: RecordCache;
  readonly reader: RecordReader;
  readonly committer: GroupCommitter;
  readonly queue: CommitQueue;
  readonly maxValueBytes: number;
}

/**
 * The store's facade: checks every argument (a call that throws has queued
 * and written nothing), turns writes into jobs of the commit queue
 * (commit-queue.ts; the committer, committer.ts, prepares and publishes
 * them), and answers reads through the read path (reader.ts), scans
 * (scan.ts), the in-memory digests and the index (bucket-entries.ts).
 */
class LevelStore implements Store {
  readonly nodeId: string;
  readonly bucketBits: number;
  readonly #db: LevelLike;
  readonly #ownsDb: boolean;
  readonly #encodings: BinaryEncodings | undefined;
  readonly #clock: HybridClock;
  readonly #bound: ClockBound;
  readonly #journal: DigestJournal;
  readonly #cache: RecordCache;
  readonly #reader: RecordReader;
  readonly #committer: GroupCommitter;
  readonly #queue: CommitQueue;
  readonly #maxValueBytes: number;
  #reservePending = false;
  #closing = false;
  #closed: Promise<void> | null = null;

  constructor(parts: StoreParts) {
    this.nodeId = parts.nodeId;
    this.bucketBits = parts.bucketBits;
    this.#db = parts.db;
    this.#ownsDb = parts.ownsDb;
    this.#encodings = parts.encodings;
    this.#clock = parts.clock;
    this.#bound = parts.bound;
    this.#journal = parts.journal;
    this.#cache = parts.cache;
    this.#reader = parts.reader;
    this.#committer = parts.committer;
    this.#queue = parts.queue;
    this.#maxValueBytes = parts.maxValueBytes;
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
   * One op as its own job; resolves with its record directly: no extra
   * promise hop, and no wrapper closure per write (tsx runs the source with
   * esbuild's keepNames, which wraps such a closure in a `__name` call).
   */
  #enqueueOne(op: LocalOp): Promise<StoredRecord> {
    return new Promise((resolve, reject) => this.#queue.enqueue({ kind: 'local', ops: [op], single: true, resolve, reject }));
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
    return new Promise((resolve, reject) => this.#queue.enqueue({ kind: 'local', ops: local, single: false, resolve, reject }));
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

  // ---- replicated writes ----

  async apply(record: StoredRecord): Promise<boolean> {
    const [changed] = await this.applyMany([record]);
    return changed as boolean;
  }

  async applyMany(records: readonly StoredRecord[]): Promise<boolean[]> {
    const checked = this.#checkRecords(records, 'applyMany');
    if (checked.length === 0) return [];
    for (const { record } of checked) {
      const error = this.#bound.checkVersion(record.version, `record ${JSON.stringify(record.key.slice(0, 64))}`);
      if (error !== undefined) throw error;
    }
    return new Promise((resolve, reject) => this.#queue.enqueue({ kind: 'apply', detailed: false, records: checked, resolve, reject }));
  }

  async applyEach(records: readonly StoredRecord[]): Promise<ApplyOutcome[]> {
    const checked = this.#checkRecords(records, 'applyEach');
    const outcomes: (ApplyOutcome | undefined)[] = new Array(checked.length);
    const accepted: ApplyRecord[] = [];
    for (let i = 0; i < checked.length; i++) {
      const c = checked[i] as ApplyRecord;
      if (this.#bound.checkVersion(c.record.version, 'record') === undefined) accepted.push(c);
      else outcomes[i] = { status: 'refused', code: 'VERSION_AHEAD', aheadMs: this.#bound.aheadMs(c.record.version) };
    }
    if (accepted.length === 0) return outcomes as ApplyOutcome[];
    const applied = await new Promise<ApplyOutcome[]>((resolve, reject) =>
      this.#queue.enqueue({ kind: 'apply', detailed: true, records: accepted, resolve, reject }));
    if (accepted.length === checked.length) return applied;
    let next = 0;
    for (let i = 0; i < outcomes.length; i++) if (outcomes[i] === undefined) outcomes[i] = applied[next++];
    return outcomes as ApplyOutcome[];
  }

  /** Records from outside validated (INVALID_RECORD, VALUE_TOO_LARGE: the whole call fails), with their keys' bytes. */
  #checkRecords(records: readonly StoredRecord[], method: string): ApplyRecord[] {
    this.#checkOpen();
    if (!Array.isArray(records)) throw new StorageError('INVALID_RECORD', `${method} takes an array of records`);
    return records.map((r) => {
      const checked = validateRecordAndKey(r);
      if (checked.record.value.length > this.#maxValueBytes) throw new StorageError('VALUE_TOO_LARGE', `value is longer than ${this.#maxValueBytes} bytes`);
      return checked;
    });
  }

  // ---- reads ----

  get(key: string): Promise<StoredRecord | undefined> {
    return this.#answer(key, this.#live);
  }

  getRecordNow(key: string): StoredRecord | undefined | null {
    this.#checkOpen();
    return this.#reader.getNow(key);
  }

  getRecord(key: string): Promise<StoredRecord | undefined> {
    return this.#answer(key, asIs);
  }

  /** A record as `get` answers it: absent when deleted or expired. */
  readonly #live = (r: StoredRecord | undefined): StoredRecord | undefined =>
    (r === undefined || isDead(r, this.#clock.wallMs()) ? undefined : r);

  /** One key, with no extra promise hop when the read path can answer it now. */
  #answer(key: string, map: (r: StoredRecord | undefined) => StoredRecord | undefined): Promise<StoredRecord | undefined> {
    let r: StoredRecord | undefined | null;
    try {
      this.#checkOpen();
      r = this.#reader.getNow(key);
    } catch (e) {
      return Promise.reject(e);
    }
    if (r === null) return this.getRecords([key]).then((records) => map(records[0]));
    return Promise.resolve(map(r));
  }

  async getRecords(keys: readonly string[]): Promise<(StoredRecord | undefined)[]> {
    this.#checkOpen();
    if (!Array.isArray(keys)) throw argError('getRecords takes an array of keys');
    return this.#reader.getMany(keys);
  }

  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    this.#checkOpen();
    if (typeof options !== 'object' || options === null) throw argError('scan options must be an object');
    const limit = checkInt('limit', options.limit ?? SCAN_LIMIT_DEFAULT, 1, SCAN_LIMIT_MAX);
    const range = scanRange({
      prefix: checkOptionalString('prefix', options.prefix),
      gte: checkOptionalString('gte', options.gte),
      lt: checkOptionalString('lt', options.lt),
      cursor: options.cursor ?? undefined,
    });
    return scanPage(this.#db, this.#encodings, range, limit, options.includeTombstones === true, this.#clock.wallMs());
  }

  subscribe(listener: (change: Change) => void): () => void {
    if (typeof listener !== 'function') throw argError('listener must be a function');
    return this.#committer.subscribe(listener);
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
    for (const b of buckets) checkInt('bucket', b, 0, last);
    return readBucketEntries(this.#db, this.#encodings, this.bucketBits, buckets);
  }

  async purgeTombstones(options: PurgeOptions): Promise<number> {
    this.#checkOpen();
    if (typeof options !== 'object' || options === null) throw argError('purge options must be an object');
    const beforeMs = options.beforeMs;
    if (typeof beforeMs !== 'number' || Number.isNaN(beforeMs)) throw argError('beforeMs must be a number');
    return this.#purgeSteps(beforeMs, false, options.fromBucket, options.toBucket);
  }

  async dropRange(options: DropRangeOptions): Promise<number> {
    this.#checkOpen();
    if (typeof options !== 'object' || options === null) throw argError('dropRange options must be an object');
    return this.#purgeSteps(0, true, options.fromBucket, options.toBucket);
  }

  /** Purge steps over buckets [fromBucket, toBucket): tombstones below `beforeMs`, or every record with `all`. */
  async #purgeSteps(beforeMs: number, all: boolean, fromBucket: number | undefined, toBucket: number | undefined): Promise<number> {
    const n = 2 ** this.bucketBits;
    const from = checkInt('fromBucket', fromBucket ?? 0, 0, n);
    const to = checkInt('toBucket', toBucket ?? n, from, n);
    const range = bucketIndexRange(from, to, this.bucketBits);
    let gte: Buffer = range.gte;
    const lt: Buffer = range.lt;
    let purged = 0;
    // One job per step, so writes queued meanwhile go between the steps.
    while (Buffer.compare(gte, lt) < 0) {
      const step = await new Promise<PurgeStep>((resolve, reject) => this.#queue.enqueue({ kind: 'purge', beforeMs, all, gte, lt, resolve, reject }));
      purged += step.purged;
      if (step.next === null) break;
      gte = step.next;
    }
    return purged;
  }

  // ---- clock ----

  observe(version: Version): void {
    if (!isValidVersion(version)) throw new StorageError('INVALID_RECORD', 'observe takes a valid version');
    // Not past the clock's ms (a read of what this store holds): at most the counter moves; no refusal counted.
    if (version.ms <= this.#clock.lastMs) {
      this.#clock.observe(version);
      return;
    }
    const error = this.#bound.checkVersion(version, 'the version observed');
    if (error !== undefined) throw error;
    this.#clock.observe(version);
    this.#maybeReserve();
  }

  now(): Version {
    this.#checkOpen();
    const error = this.#bound.checkStamp();
    if (error !== undefined) throw error;
    const v = this.#clock.now();
    this.#maybeReserve();
    return v;
  }

  clockStatus(): ClockStatus {
    const clock = this.#clock;
    const wallMs = clock.wallMs();
    const aheadMs = Math.max(0, clock.lastMs - wallMs);
    return {
      wallMs,
      readingMs: Math.max(wallMs, clock.lastMs),
      aheadMs,
      maxOffsetMs: clock.maxOffsetMs,
      stampsResumeAtMs: aheadMs > clock.maxOffsetMs ? clock.lastMs - clock.maxOffsetMs : null,
      versionsRefused: this.#bound.versionsRefused,
      stampsRefused: this.#bound.stampsRefused,
    };
  }

  /** Persists a new clock mark in the background when the clock nears the old one and no write will carry it (clock-reservation.ts). */
  #maybeReserve(): void {
    if (this.#reservePending || this.#closing || !this.#committer.needsReservation()) return;
    this.#reservePending = true;
    new Promise<void>((resolve, reject) => this.#queue.enqueue({ kind: 'reserve', resolve, reject }))
      .catch(() => undefined)
      .finally(() => { this.#reservePending = false; });
  }

  stats(): StoreStats {
    const { keys, tombstones } = this.#committer.counts;
    return { keys, tombstones, bucketBits: this.bucketBits };
  }

  close(): Promise<void> {
    if (this.#closed === null) {
      this.#closing = true;
      this.#closed = (async () => {
        await this.#queue.close();
        await this.#committer.close();
        this.#cache.clear();
        if (this.#ownsDb) await this.#db.close();
      })();
    }
    return this.#closed;
  }

  #checkOpen(): void {
    if (this.#closing) throw new StorageError('STORE_CLOSED', 'the store is closed');
  }
}

const asIs = <T>(x: T): T => x;
