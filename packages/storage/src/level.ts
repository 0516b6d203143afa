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

export interface LevelIteratorOptions extends BinaryEncodings {
  readonly gte?: Buffer;
  readonly lt?: Buffer;
  readonly limit?: number;
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
}

export const BINARY: BinaryEncodings = { keyEncoding: 'buffer', valueEncoding: 'buffer' };
