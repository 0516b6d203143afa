import { Level } from 'level';

/**
 * Everything the store knows about LevelDB and abstract-level: the slice of
 * the API it uses (`LevelLike`), and every workaround for what that API
 * costs — binary default encodings, synchronous reads, batches written
 * through the implementor interface. The casts to abstract-level's untyped
 * corners live here and nowhere else.
 */

/** Per-call encodings that make keys and values plain Buffers. */
export interface BinaryEncodings {
  readonly keyEncoding: 'buffer';
  readonly valueEncoding: 'buffer';
}

export type LevelBatchOp =
  | { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer }
  | { readonly type: 'del'; readonly key: Buffer };

export interface LevelIteratorLike {
  nextv(size: number): Promise<[Buffer, Buffer][]>;
  all(): Promise<[Buffer, Buffer][]>;
  close(): Promise<void>;
}

export interface LevelIteratorOptions extends Partial<BinaryEncodings> {
  readonly gte?: Buffer;
  readonly lt?: Buffer;
  readonly limit?: number;
}

/** abstract-level's chained batch (`db.batch()` with no arguments), which every abstract-level database has. */
export interface LevelChainedBatchLike {
  put(key: Buffer, value: Buffer, options?: BinaryEncodings): unknown;
  del(key: Buffer, options?: BinaryEncodings): unknown;
  write(options?: { sync?: boolean }): Promise<void>;
}

/**
 * abstract-level's interface for implementations (its "private API":
 * `_chainedBatch`, and the batch's `_put`, `_del`, `_write`), which
 * classic-level has. The store writes through it only to a database it
 * opened itself (see `implementorBatches`).
 */
export interface ImplementorBatch {
  _put(key: Buffer, value: Buffer): void;
  _del(key: Buffer): void;
  _write(options: { readonly sync?: boolean }): Promise<void>;
}

export interface ImplementorDb {
  _chainedBatch(): ImplementorBatch;
  /** Public abstract-level API: stop tracking a resource (a batch registers itself when constructed). */
  detachResource(resource: object): void;
}

/**
 * Writes `ops` as one LevelDB batch through the implementor interface.
 * abstract-level's batch constructor registers the batch with the database
 * (`attachResource`, so `db.close()` can close it), and only the public
 * `close()` — which the public `write()` ends with — lets go of it. So the
 * batch is detached once written: else every batch, with its native
 * LevelDB write batch (freed only when the batch is garbage), would stay
 * referenced until the database closed (a leak in proportion to the keys written).
 */
export function writeImplementorBatch(db: ImplementorDb, ops: readonly LevelBatchOp[], options: { readonly sync?: boolean }): Promise<void> {
  const batch = db._chainedBatch();
  for (const op of ops) {
    if (op.type === 'put') batch._put(op.key, op.value);
    else batch._del(op.key);
  }
  const written = batch._write(options);
  const detach = (): void => db.detachResource(batch);
  void written.then(detach, detach);
  return written;
}

/**
 * The database itself as an `ImplementorDb`, when the store may write through
 * it: only a database the store opened (nobody else can add hooks, listeners
 * or sublevels to it, and its encodings are the store's binary ones) and
 * that has the interface. Skipping the public `batch()` wrapper, which
 * validates, re-encodes and copies every op for hooks and events the store
 * never uses, is most of the main thread's cost of handing a batch to
 * LevelDB (measurements in docs/storage.md).
 */
export function implementorBatches(db: LevelLike, ownedByStore: boolean): ImplementorDb | null {
  if (!ownedByStore) return null;
  const { _chainedBatch: chained, detachResource: detach } = db as unknown as Partial<ImplementorDb>;
  return typeof chained === 'function' && typeof detach === 'function' ? (db as unknown as ImplementorDb) : null;
}

/**
 * The slice of the abstract-level API the store uses. A classic-level,
 * memory-level or `level` database, or any sublevel of one, fits. Whatever
 * the database's default encodings, the store reads and writes Buffers (it
 * passes binary encodings per call when the defaults are not binary).
 */
export interface LevelLike {
  readonly status: string;
  /** abstract-level's feature manifest; `getSync` is used when it says so. */
  readonly supports?: object;
  open(): Promise<void>;
  close(): Promise<void>;
  getMany(keys: Buffer[], options: BinaryEncodings): Promise<(Buffer | undefined)[]>;
  /** `(key: Buffer, options: BinaryEncodings) => Buffer | undefined` where supported (typed loosely: abstract-level declares it generically). */
  readonly getSync?: unknown;
  batch(operations: LevelBatchOp[], options: BinaryEncodings & { sync?: boolean }): Promise<void>;
  iterator(options: LevelIteratorOptions): LevelIteratorLike;
  /** Deletes every key in a range (abstract-level's `clear`). */
  clear(options: LevelIteratorOptions): Promise<void>;
  /** The database's default encodings (abstract-level). */
  keyEncoding?(): { readonly name: string };
  valueEncoding?(): { readonly name: string };
}

export const BINARY: BinaryEncodings = { keyEncoding: 'buffer', valueEncoding: 'buffer' };

/**
 * Whether the database's own default encodings are already 'buffer' for keys
 * and values, so calls can leave the encoding options out. That matters: in
 * abstract-level 3 an options object on an array batch is spread into every
 * op, which costs more CPU per entry than LevelDB's own work
 * (docs/storage.md, "Where write CPU goes").
 */
export function hasBinaryDefaults(db: LevelLike): boolean {
  try {
    return db.keyEncoding?.().name === 'buffer' && db.valueEncoding?.().name === 'buffer';
  } catch {
    return false;
  }
}

/**
 * A new `level` (classic-level) database at `location`, not yet open, with
 * binary default encodings so the hot calls need no options (see
 * `hasBinaryDefaults`) and the given write buffer (memtable) size.
 */
export function createLevel(location: string, writeBufferSize: number): LevelLike {
  return new Level(location, { ...BINARY, writeBufferSize }) as unknown as LevelLike;
}

/** abstract-level 3's synchronous read (`getSync`). */
export interface SyncReader {
  getSync(key: Buffer, options?: BinaryEncodings): Buffer | undefined;
}

/** The database as a `SyncReader` when its manifest says it reads synchronously; null otherwise. */
export function syncReaderOf(db: LevelLike): SyncReader | null {
  const supported = (db.supports as { getSync?: unknown } | undefined)?.getSync === true && typeof db.getSync === 'function';
  return supported ? (db as unknown as SyncReader) : null;
}

/** Batches of at least this many ops go through a chained batch when the public API is used (see `BatchWriter`). */
const CHAINED_BATCH_MIN_OPS = 16;
const NO_WRITE_OPTIONS = {};

/**
 * Writes a store's batches, each one atomic LevelDB batch, the cheapest way
 * its database allows. To a database the store opened: through its
 * implementor interface (`implementorBatches`). Else with no per-op
 * options, because abstract-level copies an array batch's options into
 * every op: small batches as an array batch (a chained batch's write costs
 * more up front), larger ones — and any that needs options (encodings,
 * `sync`) — through a chained batch, which costs less per entry.
 */
export class BatchWriter {
  readonly #db: LevelLike;
  readonly #direct: ImplementorDb | null;
  readonly #encodings: BinaryEncodings | undefined;
  readonly #options: { readonly sync: true } | undefined;

  constructor(db: LevelLike, ownedByStore: boolean, encodings: BinaryEncodings | undefined, sync: boolean) {
    this.#db = db;
    this.#direct = implementorBatches(db, ownedByStore);
    this.#encodings = encodings;
    this.#options = sync ? { sync: true } : undefined;
  }

  write(ops: LevelBatchOp[]): Promise<void> {
    const direct = this.#direct;
    // Not open (never expected): the public path below answers with abstract-level's error.
    if (direct !== null && this.#db.status === 'open') return writeImplementorBatch(direct, ops, this.#options ?? NO_WRITE_OPTIONS);
    const enc = this.#encodings;
    if (ops.length < CHAINED_BATCH_MIN_OPS && enc === undefined && this.#options === undefined) {
      return (this.#db as unknown as { batch(ops: LevelBatchOp[]): Promise<void> }).batch(ops);
    }
    const b = (this.#db as unknown as { batch(): LevelChainedBatchLike }).batch();
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value, enc);
      else b.del(op.key, enc);
    }
    return b.write(this.#options);
  }
}
