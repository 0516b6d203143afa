import type { RecordCache } from './cache.ts';
import { dataKey } from './keyspace.ts';
import { BINARY, type BinaryEncodings, type LevelLike, type SyncReader } from './level.ts';
import { decodeRecordValue, encodeKey } from './record.ts';
import type { StoredRecord } from './types.ts';

/**
 * The read path: the read cache first, then the database — synchronously
 * (`getSync`) where the database can and `syncReads` allows, else through
 * `getMany`. The committer reads a group's keys through it too.
 *
 * The cache stays coherent because only two things fill it: the committer
 * (serialized with every write), and reads that cannot be older than the
 * last commit. A synchronous read always sees the last commit; an
 * asynchronous one fills the cache only when no commit happened while it
 * was in flight (`committed()` counts them).
 */
export class RecordReader {
  readonly #db: LevelLike;
  readonly #sync: SyncReader | null;
  readonly #encodings: BinaryEncodings | undefined;
  readonly #cache: RecordCache;
  /** Bumped after every commit; an asynchronous read that saw it change must not fill the cache. */
  #commitSeq = 0;

  /** `sync`: the database's synchronous reader, when reads should use it. */
  constructor(db: LevelLike, encodings: BinaryEncodings | undefined, cache: RecordCache, sync: SyncReader | null) {
    this.#db = db;
    this.#encodings = encodings;
    this.#cache = cache;
    this.#sync = sync;
  }

  /** Tells the reader a batch was committed (and the cache updated with it). */
  committed(): void {
    this.#commitSeq++;
  }

  /**
   * One key without a promise hop when it can be answered now: from the
   * cache (a cached key is valid, so it is not validated again) or with a
   * synchronous read. null: it needs an asynchronous read (`getMany`).
   * Throws INVALID_KEY / KEY_EMPTY / KEY_TOO_LONG.
   */
  getNow(key: string): StoredRecord | undefined | null {
    const c = typeof key === 'string' ? this.#cache.get(key) : undefined;
    if (c !== undefined) return c ?? undefined;
    const keyBytes = encodeKey(key);
    const sync = this.#sync;
    if (sync === null) return null;
    const v = sync.getSync(dataKey(keyBytes), this.#encodings);
    const r = v === undefined ? null : decodeRecordValue(key, v);
    this.#cache.set(key, r);
    return r ?? undefined;
  }

  /** Many keys, all validated before anything is read. */
  async getMany(keys: readonly string[]): Promise<(StoredRecord | undefined)[]> {
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
    const read = this.read(missIndexes.map((i) => dataKey(encoded[i] as Buffer)));
    const values = Array.isArray(read) ? read : await read;
    // A synchronous read is never older than the last commit, so it may always fill the cache.
    const fill = this.#sync !== null || seq === this.#commitSeq;
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

  /** Raw values of data keys, bypassing the cache: synchronously when it can, else a promise. */
  read(keys: Buffer[]): Promise<(Buffer | undefined)[]> | (Buffer | undefined)[] {
    const sync = this.#sync;
    if (sync === null) return this.#db.getMany(keys, this.#encodings ?? BINARY);
    const enc = this.#encodings;
    return keys.map((k) => sync.getSync(k, enc));
  }
}
