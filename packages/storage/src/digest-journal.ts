import { DIGEST_BYTES } from './hash.ts';
import { StorageError } from './errors.ts';
import { JOURNAL, PAGE, journalKey, keyspaceRange, pageKey } from './keyspace.ts';
import type { BinaryEncodings, LevelBatchOp, LevelLike } from './level.ts';

/**
 * How bucket digests are persisted (store format 2).
 *
 * The digests live in memory (2^B × 16 bytes). On disk they are pages of
 * `PAGE_BUCKETS` consecutive buckets (`'p'` ‖ page) plus a journal: each
 * write batch adds ONE journal entry (`'j'` ‖ seq) listing the new digest of
 * every bucket it changed, instead of one entry per changed bucket. When the
 * journal since the last checkpoint grows past `maxJournalBytes`, the batch
 * that crosses it writes the changed pages instead (a checkpoint, recorded as
 * meta `digestCheckpoint` = that batch's seq), and older journal entries are
 * deleted in the background. Opening reads the pages and replays the journal
 * entries after the checkpoint (their digests are absolute, so replay is
 * idempotent); closing checkpoints, so a cleanly closed store has no journal.
 *
 * A journal entry also carries the key counters (live keys, tombstones)
 * when the batch changed them, so a batch that adds a key writes no separate
 * `counts` meta entry; a checkpoint writes the counters to meta `counts`.
 *
 * Journal entry: flags u8 (bit 0: counters present) ‖ [keys u48 BE ‖
 * tombstones u48 BE] ‖ (bucket u32 BE ‖ 16-byte digest)*.
 *
 * The journal entry is in the same LevelDB batch as the data and index
 * entries it describes, so digests, counters, index and data agree after a
 * crash at any moment, as before.
 */
export const PAGE_BUCKETS = 256;
/** One journal item: bucket u32 BE ‖ digest. */
const ITEM_BYTES = 4 + DIGEST_BYTES;
const HAS_COUNTS = 1;
/** Flags byte, and the counters when present (two u48). */
const HEADER_BYTES = 1;
const COUNTS_BYTES = 12;

/** Live keys and tombstones of the store. */
export interface Counts {
  readonly keys: number;
  readonly tombstones: number;
}
export const DEFAULT_MAX_JOURNAL_BYTES = 4 * 1024 * 1024;

export const CHECKPOINT_META = 'digestCheckpoint';

/** What one batch writes for its digests, published once the batch is written. */
export interface DigestPlan {
  readonly staged: ReadonlyMap<number, Buffer>;
  readonly seq: number;
  /** True when the batch wrote pages (a checkpoint) instead of a journal entry. */
  readonly checkpoint: boolean;
  readonly bytes: number;
  /** Journal bytes since the checkpoint once this batch is written. */
  readonly journalBytes: number;
}

export interface LoadedDigests {
  readonly digests: Uint8Array;
  /** Seq of the last journal entry or checkpoint. */
  readonly lastSeq: number;
  readonly checkpointSeq: number;
  /** The counters of the last journal entry that carried them, if any did. */
  readonly counts: Counts | undefined;
  /** Pages changed by the replayed journal (not yet checkpointed). */
  readonly dirtyPages: Set<number>;
  readonly journalBytes: number;
}

export class DigestJournal {
  readonly #digests: Uint8Array;
  readonly #bucketBits: number;
  readonly #maxJournalBytes: number;
  readonly #metaKey: Buffer;
  readonly #countsKey: Buffer;
  readonly #encodeMeta: (value: unknown) => Buffer;
  #seq: number;
  readonly #dirtyPages: Set<number>;
  #journalBytes: number;
  /** The journal entries below this seq are obsolete (folded into pages). */
  #checkpointSeq: number;

  constructor(
    loaded: LoadedDigests, bucketBits: number, maxJournalBytes: number, metaKey: Buffer, countsKey: Buffer, encodeMeta: (value: unknown) => Buffer,
  ) {
    this.#digests = loaded.digests;
    this.#bucketBits = bucketBits;
    this.#maxJournalBytes = maxJournalBytes;
    this.#metaKey = metaKey;
    this.#countsKey = countsKey;
    this.#encodeMeta = encodeMeta;
    this.#seq = loaded.lastSeq;
    this.#dirtyPages = loaded.dirtyPages;
    this.#journalBytes = loaded.journalBytes;
    this.#checkpointSeq = loaded.checkpointSeq;
  }

  get digests(): Uint8Array {
    return this.#digests;
  }

  get checkpointSeq(): number {
    return this.#checkpointSeq;
  }

  /** Whether anything is journaled since the last checkpoint. */
  get dirty(): boolean {
    return this.#seq > this.#checkpointSeq;
  }

  /**
   * A copy of a bucket's digest to change in the next batch; `prev` is the
   * plan of a batch still being written, whose digests it builds on.
   */
  stage(bucket: number, prev: DigestPlan | null): Buffer {
    const d = Buffer.allocUnsafe(DIGEST_BYTES);
    const p = prev?.staged.get(bucket);
    d.set(p ?? this.#digests.subarray(bucket * DIGEST_BYTES, (bucket + 1) * DIGEST_BYTES));
    return d;
  }

  /**
   * Adds to `batch` what persists the staged digests and the counters after
   * the batch (`counts`; `countsChanged` when the batch changed them): one
   * journal entry, or (past the journal budget, or when `checkpoint`) the
   * changed pages, the counters and the checkpoint mark. Nothing changes in
   * memory until `publish`.
   */
  plan(
    batch: LevelBatchOp[], staged: ReadonlyMap<number, Buffer>, prev: DigestPlan | null, counts: Counts, countsChanged: boolean, checkpoint = false,
  ): DigestPlan {
    const lastSeq = prev === null ? this.#seq : prev.seq;
    const journalBytes = prev === null ? this.#journalBytes : prev.journalBytes;
    const seq = lastSeq + 1;
    const bytes = HEADER_BYTES + (countsChanged ? COUNTS_BYTES : 0) + staged.size * ITEM_BYTES;
    if (checkpoint || journalBytes + bytes > this.#maxJournalBytes) {
      // Pages changed since the checkpoint: the published ones, the write in flight's, and ours.
      const pages = new Set(prev?.checkpoint === true ? [] : this.#dirtyPages);
      if (prev !== null && !prev.checkpoint) for (const bucket of prev.staged.keys()) pages.add(Math.floor(bucket / PAGE_BUCKETS));
      for (const bucket of staged.keys()) pages.add(Math.floor(bucket / PAGE_BUCKETS));
      for (const page of pages) batch.push({ type: 'put', key: pageKey(page), value: this.#pageValue(page, staged, prev) });
      batch.push({ type: 'put', key: this.#countsKey, value: this.#encodeMeta([counts.keys, counts.tombstones]) });
      batch.push({ type: 'put', key: this.#metaKey, value: this.#encodeMeta(seq) });
      return { staged, seq, checkpoint: true, bytes, journalBytes: 0 };
    }
    if (staged.size === 0 && !countsChanged) return { staged, seq: lastSeq, checkpoint: false, bytes: 0, journalBytes };
    const entry = Buffer.allocUnsafe(bytes);
    entry[0] = countsChanged ? HAS_COUNTS : 0;
    let o = HEADER_BYTES;
    if (countsChanged) {
      entry.writeUIntBE(counts.keys, o, 6);
      entry.writeUIntBE(counts.tombstones, o + 6, 6);
      o += COUNTS_BYTES;
    }
    for (const [bucket, d] of staged) {
      entry.writeUInt32BE(bucket, o);
      entry.set(d, o + 4);
      o += ITEM_BYTES;
    }
    batch.push({ type: 'put', key: journalKey(seq), value: entry });
    return { staged, seq, checkpoint: false, bytes, journalBytes: journalBytes + bytes };
  }

  /** After the batch is written: the staged digests become the digests. True if it was a checkpoint. */
  publish(plan: DigestPlan): boolean {
    for (const [bucket, d] of plan.staged) this.#digests.set(d, bucket * DIGEST_BYTES);
    this.#seq = plan.seq;
    this.#journalBytes = plan.journalBytes;
    if (!plan.checkpoint) {
      for (const bucket of plan.staged.keys()) this.#dirtyPages.add(Math.floor(bucket / PAGE_BUCKETS));
      return false;
    }
    this.#dirtyPages.clear();
    this.#checkpointSeq = plan.seq;
    return true;
  }

  #pageValue(page: number, staged: ReadonlyMap<number, Buffer>, prev: DigestPlan | null): Buffer {
    const first = page * PAGE_BUCKETS;
    const count = Math.min(PAGE_BUCKETS, 2 ** this.#bucketBits - first);
    const value = Buffer.allocUnsafe(count * DIGEST_BYTES);
    value.set(this.#digests.subarray(first * DIGEST_BYTES, (first + count) * DIGEST_BYTES));
    for (const layer of prev === null ? [staged] : [prev.staged, staged]) {
      for (const [bucket, d] of layer) {
        if (bucket >= first && bucket < first + count) value.set(d, (bucket - first) * DIGEST_BYTES);
      }
    }
    return value;
  }
}

/**
 * Loads the digests of a format-2 store: every page, then the journal
 * entries after the checkpoint, in order. Reads the page keyspace (2^B × 16
 * bytes) and the journal since the last checkpoint; never the index.
 */
export async function loadDigests(db: LevelLike, bucketBits: number, checkpointSeq: number, encodings: BinaryEncodings | undefined): Promise<LoadedDigests> {
  const n = 2 ** bucketBits;
  const digests = new Uint8Array(n * DIGEST_BYTES);
  const pages = Math.ceil(n / PAGE_BUCKETS);
  for (const [k, v] of await db.iterator({ ...keyspaceRange(PAGE), ...encodings }).all()) {
    const page = k.length === 5 ? k.readUInt32BE(1) : -1;
    const count = Math.min(PAGE_BUCKETS, n - page * PAGE_BUCKETS);
    if (page < 0 || page >= pages || v.length !== count * DIGEST_BYTES) throw new StorageError('CORRUPT_DATA', 'malformed digest page');
    digests.set(v, page * PAGE_BUCKETS * DIGEST_BYTES);
  }
  const dirtyPages = new Set<number>();
  let lastSeq = checkpointSeq;
  let journalBytes = 0;
  let counts: Counts | undefined;
  const range = { gte: journalKey(checkpointSeq + 1), lt: keyspaceRange(JOURNAL).lt };
  for (const [k, v] of await db.iterator({ ...range, ...encodings }).all()) {
    const seq = k.length === 9 ? readSeq(k) : -1;
    const flags = v.length > 0 ? v[0] as number : -1;
    const start = HEADER_BYTES + ((flags & HAS_COUNTS) !== 0 ? COUNTS_BYTES : 0);
    if (seq !== lastSeq + 1 || flags < 0 || (flags & ~HAS_COUNTS) !== 0 || v.length < start || (v.length - start) % ITEM_BYTES !== 0) {
      throw new StorageError('CORRUPT_DATA', 'malformed or missing digest journal entry');
    }
    if ((flags & HAS_COUNTS) !== 0) counts = { keys: v.readUIntBE(HEADER_BYTES, 6), tombstones: v.readUIntBE(HEADER_BYTES + 6, 6) };
    for (let o = start; o < v.length; o += ITEM_BYTES) {
      const bucket = v.readUInt32BE(o);
      if (bucket >= n) throw new StorageError('CORRUPT_DATA', 'digest journal names a bucket out of range');
      digests.set(v.subarray(o + 4, o + ITEM_BYTES), bucket * DIGEST_BYTES);
      dirtyPages.add(Math.floor(bucket / PAGE_BUCKETS));
    }
    lastSeq = seq;
    journalBytes += v.length;
  }
  return { digests, lastSeq, checkpointSeq, counts, dirtyPages, journalBytes };
}

/** Every page of the digests (for the migration from format 1). */
export function allPages(digests: Uint8Array, bucketBits: number): LevelBatchOp[] {
  const n = 2 ** bucketBits;
  const ops: LevelBatchOp[] = [];
  for (let first = 0, page = 0; first < n; first += PAGE_BUCKETS, page++) {
    const count = Math.min(PAGE_BUCKETS, n - first);
    ops.push({ type: 'put', key: pageKey(page), value: Buffer.from(digests.subarray(first * DIGEST_BYTES, (first + count) * DIGEST_BYTES)) });
  }
  return ops;
}

function readSeq(k: Buffer): number {
  return k.readUInt32BE(1) * 2 ** 32 + k.readUInt32BE(5);
}
