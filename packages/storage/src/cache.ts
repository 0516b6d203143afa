import type { StoredRecord } from './types.ts';

/**
 * Per-entry bookkeeping overhead counted against the budget besides key and
 * value bytes: map entry, entry, record and version objects, and (for records
 * the store wrote) its hash memo (prepare-group.ts).
 */
const ENTRY_OVERHEAD_BYTES = 144;

/**
 * A bounded read cache of key -> record (or null for "known absent"),
 * budgeted in bytes. Two generations instead of a strict LRU: new entries go
 * to `young`; when `young` holds half the budget it becomes `old` and the
 * previous `old` is dropped; a hit in `old` moves the entry to `young`. Every
 * operation is O(1) (evicting the head of one big Map is not: V8 skips the
 * deleted slots on every fresh iteration), and recently used entries survive.
 *
 * Coherence is the store's job: only the commit path (serialized with every
 * write) and reads that cannot be older than the last commit may `set`.
 */
/** A cached record (null: known absent) and, for records the store wrote, its hash memo (prepare-group.ts). */
export interface CacheEntry {
  readonly record: StoredRecord | null;
  readonly memo: string | undefined;
}

export class RecordCache {
  readonly #halfBytes: number;
  readonly #maxEntryBytes: number;
  #young = new Map<string, CacheEntry>();
  #old = new Map<string, CacheEntry>();
  #youngBytes = 0;

  constructor(maxBytes: number) {
    this.#halfBytes = Math.floor(maxBytes / 2);
    this.#maxEntryBytes = Math.floor(maxBytes / 16);
  }

  /** undefined = not cached; null = cached as absent. */
  get(key: string): StoredRecord | null | undefined {
    return this.entry(key)?.record;
  }

  /** The entry with its memo; undefined = not cached. */
  entry(key: string): CacheEntry | undefined {
    const r = this.#young.get(key);
    if (r !== undefined) return r;
    const o = this.#old.get(key);
    if (o === undefined) return undefined;
    this.#old.delete(key);
    this.#insert(key, o);
    return o;
  }

  /** Whether the key is cached (does not count as a use). */
  has(key: string): boolean {
    return this.#young.has(key) || this.#old.has(key);
  }

  set(key: string, record: StoredRecord | null, memo?: string): void {
    if (this.#halfBytes === 0) return;
    this.#old.delete(key);
    const prev = this.#young.get(key);
    if (prev !== undefined) {
      this.#young.delete(key);
      this.#youngBytes -= sizeOf(key, prev.record);
    }
    this.#insert(key, { record, memo });
  }

  #insert(key: string, entry: CacheEntry): void {
    const record = entry.record;
    const size = sizeOf(key, record);
    if (size > this.#maxEntryBytes) return;
    if (this.#youngBytes + size > this.#halfBytes) {
      this.#old = this.#young;
      this.#young = new Map();
      this.#youngBytes = 0;
    }
    this.#young.set(key, entry);
    this.#youngBytes += size;
  }

  delete(key: string): void {
    this.#old.delete(key);
    const prev = this.#young.get(key);
    if (prev !== undefined) {
      this.#young.delete(key);
      this.#youngBytes -= sizeOf(key, prev.record);
    }
  }

  clear(): void {
    this.#young.clear();
    this.#old.clear();
    this.#youngBytes = 0;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }
}

function sizeOf(key: string, record: StoredRecord | null): number {
  return ENTRY_OVERHEAD_BYTES + key.length * 2 + (record === null ? 0 : record.value.byteLength + record.version.node.length);
}
