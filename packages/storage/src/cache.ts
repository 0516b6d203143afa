import type { StoredRecord } from './types.ts';

/** Per-entry bookkeeping overhead counted against the budget besides key and value bytes. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * A bounded LRU of key -> record (or null for "known absent"), budgeted in
 * bytes. A Map keeps insertion order, so re-inserting on hit makes the first
 * key the least recently used.
 *
 * Coherence is the store's job: only the commit path (which is serialized
 * with every write) and reads that saw no commit in between may `set`.
 */
export class RecordCache {
  readonly #maxBytes: number;
  readonly #maxEntryBytes: number;
  readonly #map = new Map<string, StoredRecord | null>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#maxEntryBytes = Math.floor(maxBytes / 16);
  }

  get enabled(): boolean {
    return this.#maxBytes > 0;
  }

  /** undefined = not cached; null = cached as absent. */
  get(key: string): StoredRecord | null | undefined {
    const r = this.#map.get(key);
    if (r === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, r);
    return r;
  }

  set(key: string, record: StoredRecord | null): void {
    if (this.#maxBytes === 0) return;
    this.delete(key);
    const size = sizeOf(key, record);
    if (size > this.#maxEntryBytes) return;
    this.#map.set(key, record);
    this.#bytes += size;
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#map.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  delete(key: string): void {
    const r = this.#map.get(key);
    if (r === undefined) return;
    this.#map.delete(key);
    this.#bytes -= sizeOf(key, r);
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  get size(): number {
    return this.#map.size;
  }
}

function sizeOf(key: string, record: StoredRecord | null): number {
  return ENTRY_OVERHEAD_BYTES + key.length * 2 + (record === null ? 0 : record.value.byteLength + record.version.node.length);
}
