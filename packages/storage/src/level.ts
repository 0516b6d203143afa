/**
 * The slice of the abstract-level API the store uses. A classic-level,
 * memory-level or `level` database, or any sublevel of one, fits. The store
 * passes key and value encodings on every call, so the database's own
 * default encodings do not matter.
 */
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
 * referenced until the database closed (~0.5 KB of memory per written key).
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
 * never uses, halves the main thread's cost of handing a batch to LevelDB
 * (bench/.scratch measurements in docs/storage.md).
 */
export function implementorBatches(db: LevelLike, ownedByStore: boolean): ImplementorDb | null {
  if (!ownedByStore) return null;
  const { _chainedBatch: chained, detachResource: detach } = db as unknown as Partial<ImplementorDb>;
  return typeof chained === 'function' && typeof detach === 'function' ? (db as unknown as ImplementorDb) : null;
}

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
 * op, which measured ~10 µs of CPU per entry on classic-level (19 µs against
 * 5 µs with no options, bench/storage), more than LevelDB's own work.
 */
export function hasBinaryDefaults(db: LevelLike): boolean {
  try {
    return db.keyEncoding?.().name === 'buffer' && db.valueEncoding?.().name === 'buffer';
  } catch {
    return false;
  }
}
