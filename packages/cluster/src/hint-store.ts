import { compareRecords, supersedes } from '@hearsay/storage';
import type { StoredRecord } from '@hearsay/storage';
import { Packr } from 'msgpackr';
import { validateRecord } from '@hearsay/storage';

/**
 * Durable hints: writes kept for a replica that could not take them, to be
 * delivered when it is back (hinted handoff).
 *
 * One hint per (target, key): the record that wins by last-write-wins
 * (storage's merge rule) replaces the other, so a hot key costs one entry
 * however often it is written while the target is down.
 * Entries live under `<encodeURIComponent(target)>/<key>` in a LevelDB
 * sublevel beside the data, and are bounded per target (`maxHintsPerTarget`):
 * past the bound new hints are refused and counted, and repair covers them.
 */

/** The subset of an abstract-level database (utf8 keys, Uint8Array values) the hint store uses. */
export interface HintsDb {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  del(key: string): Promise<void>;
  keys(options: { gte: string; lt: string; limit?: number }): AsyncIterable<string> & { close(): Promise<void> };
  iterator(options: { gte: string; lt: string; limit?: number }): AsyncIterable<[string, Uint8Array]> & {
    close(): Promise<void>;
  };
}

/** Anything with abstract-level's `sublevel()`: a Level, a memory-level, or a sublevel of them. */
export interface SublevelParent {
  sublevel(name: string, options: { keyEncoding: 'utf8'; valueEncoding: 'view' }): unknown;
}

/** The hints sublevel of a data database (`db.sublevel('hints')` with utf8 keys and Uint8Array values). */
export function hintsSublevel(db: SublevelParent, name = 'hints'): HintsDb {
  // abstract-level's sublevel has exactly these methods with these encodings.
  return db.sublevel(name, { keyEncoding: 'utf8', valueEncoding: 'view' }) as HintsDb;
}

export interface Hint {
  readonly target: string;
  readonly record: StoredRecord;
  /** When the hint was first kept, epoch ms (for the hint window). */
  readonly storedAtMs: number;
}

export interface HintStoreOptions {
  readonly maxHintsPerTarget?: number;
}

export interface HintStoreStats {
  readonly hints: number;
  readonly stored: number;
  readonly refused: number;
  /** Hints refused because their versions were more than the maximum clock offset ahead of this node's clock. */
  readonly refusedClock: number;
  readonly delivered: number;
  readonly expired: number;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const SEP = '/';

const prefixOf = (target: string): string => encodeURIComponent(target) + SEP;
// '0' is the character after '/', so [prefix, prefix-with-'0') holds exactly one target's keys.
const upperOf = (target: string): string => encodeURIComponent(target) + '0';

export class HintStore {
  readonly #db: HintsDb;
  readonly #maxPerTarget: number;
  /** Entry counts per target, loaded lazily. */
  readonly #counts = new Map<string, number>();
  #stored = 0;
  #refused = 0;
  #refusedClock = 0;
  #delivered = 0;
  #expired = 0;
  /** Serialises read-modify-write per hint key. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(db: HintsDb, options: HintStoreOptions = {}) {
    this.#db = db;
    this.#maxPerTarget = options.maxHintsPerTarget ?? 100_000;
  }

  /** Loads the per-target counts; call once before use. */
  async open(): Promise<void> {
    this.#counts.clear();
    const it = this.#db.keys({ gte: '', lt: '\uffff' });
    try {
      for await (const k of it) {
        const target = decodeURIComponent(k.slice(0, k.indexOf(SEP)));
        this.#counts.set(target, (this.#counts.get(target) ?? 0) + 1);
      }
    } finally {
      await it.close();
    }
  }

  /** Targets that have hints waiting. */
  targets(): string[] {
    return [...this.#counts].filter(([, n]) => n > 0).map(([t]) => t);
  }

  count(target?: string): number {
    if (target !== undefined) return this.#counts.get(target) ?? 0;
    let n = 0;
    for (const c of this.#counts.values()) n += c;
    return n;
  }

  stats(): HintStoreStats {
    return {
      hints: this.count(),
      stored: this.#stored,
      refused: this.#refused,
      refusedClock: this.#refusedClock,
      delivered: this.#delivered,
      expired: this.#expired,
    };
  }

  /**
   * Keeps hints for `target`; resolves with how many were kept (the rest hit
   * the bound). With `maxAheadMs`, a record whose version is more than that
   * ahead of `nowMs` is refused and counted (`refusedClock`): the target's
   * store would refuse it too (a clock ahead stamped it), so it is not kept
   * for hours.
   */
  add(target: string, records: readonly StoredRecord[], nowMs: number, maxAheadMs = Infinity): Promise<number> {
    return this.#serial(async () => {
      let kept = 0;
      for (const record of records) {
        if (record.version.ms - nowMs > maxAheadMs) {
          this.#refusedClock++;
          continue;
        }
        const k = prefixOf(target) + record.key;
        const old = await this.#db.get(k);
        if (old !== undefined) {
          const previous = decodeHint(target, old);
          if (previous !== undefined && !supersedes(record, previous.record)) {
            kept++;
            continue;
          }
        } else if (this.count(target) >= this.#maxPerTarget) {
          this.#refused++;
          continue;
        }
        await this.#db.put(k, packr.pack({ storedAtMs: nowMs, record }));
        if (old === undefined) this.#counts.set(target, this.count(target) + 1);
        this.#stored++;
        kept++;
      }
      return kept;
    });
  }

  /** Up to `limit` hints for `target`, in key order. Undecodable entries are dropped. */
  async peek(target: string, limit: number): Promise<Hint[]> {
    const out: Hint[] = [];
    const bad: string[] = [];
    const it = this.#db.iterator({ gte: prefixOf(target), lt: upperOf(target), limit });
    try {
      for await (const [k, v] of it) {
        const h = decodeHint(target, v);
        if (h === undefined) bad.push(k);
        else out.push(h);
      }
    } finally {
      await it.close();
    }
    for (const k of bad) await this.#remove(target, k);
    return out;
  }

  /** Removes delivered hints, unless a newer version was hinted meanwhile. */
  markDelivered(hints: readonly Hint[]): Promise<void> {
    return this.#serial(async () => {
      for (const h of hints) {
        const k = prefixOf(h.target) + h.record.key;
        const cur = await this.#db.get(k);
        if (cur === undefined) continue;
        const now = decodeHint(h.target, cur);
        if (now !== undefined && compareRecords(now.record, h.record) > 0) continue;
        await this.#db.del(k);
        this.#counts.set(h.target, Math.max(0, this.count(h.target) - 1));
        this.#delivered++;
      }
    });
  }

  /** Drops hints kept before `cutoffMs` (older than the hint window); resolves with how many. */
  expire(cutoffMs: number): Promise<number> {
    return this.#serial(async () => {
      const old: [string, string][] = [];
      for (const target of this.targets()) {
        const it = this.#db.iterator({ gte: prefixOf(target), lt: upperOf(target) });
        try {
          for await (const [k, v] of it) {
            const h = decodeHint(target, v);
            if (h === undefined || h.storedAtMs < cutoffMs) old.push([target, k]);
          }
        } finally {
          await it.close();
        }
      }
      for (const [target, k] of old) await this.#remove(target, k);
      this.#expired += old.length;
      return old.length;
    });
  }

  async #remove(target: string, k: string): Promise<void> {
    await this.#db.del(k);
    this.#counts.set(target, Math.max(0, this.count(target) - 1));
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }
}

function decodeHint(target: string, bytes: Uint8Array): Hint | undefined {
  try {
    const v = packr.unpack(bytes) as { storedAtMs?: unknown; record?: unknown };
    if (typeof v !== 'object' || v === null || typeof v.storedAtMs !== 'number') return undefined;
    return { target, storedAtMs: v.storedAtMs, record: validateRecord(v.record) };
  } catch {
    return undefined;
  }
}
