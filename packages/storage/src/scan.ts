import { decodeCursor, encodeCursor } from './cursor.ts';
import { DATA, dataKey } from './keyspace.ts';
import type { BinaryEncodings, LevelLike } from './level.ts';
import { isDead } from './merge.ts';
import { decodeRecordValue } from './record.ts';
import type { ScanPage, StoredRecord } from './types.ts';

/**
 * Scanning records in key order: the data keyspace is `'d'` ‖ key UTF-8, so
 * UTF-8 byte order of keys is LevelDB's order, and every bound is one data
 * key. A page reads one iterator (a consistent snapshot) and ends with a
 * cursor (cursor.ts) naming its last key.
 */

/** Bounds of a scan, as given (checked by the caller). */
export interface ScanBounds {
  readonly prefix: string | undefined;
  readonly gte: string | undefined;
  readonly lt: string | undefined;
  /** Resume after the key this cursor names (INVALID_CURSOR if it names none). */
  readonly cursor: string | undefined;
}

/** The data-key range `[gte, lt)` a scan reads: the tightest of its bounds; null when it is empty. */
export function scanRange(bounds: ScanBounds): { gte: Buffer; lt: Buffer } | null {
  let lower: Buffer = Buffer.of(DATA);
  let upper: Buffer = Buffer.of(DATA + 1);
  const raise = (b: Buffer): void => { if (Buffer.compare(b, lower) > 0) lower = b; };
  const cap = (b: Buffer): void => { if (Buffer.compare(b, upper) < 0) upper = b; };
  if (bounds.prefix !== undefined) {
    const p = dataKey(Buffer.from(bounds.prefix, 'utf8'));
    raise(p);
    // No UTF-8 byte is 0xff, so prefix ‖ 0xff is above every key with the prefix.
    cap(Buffer.concat([p, Buffer.of(0xff)]));
  }
  if (bounds.gte !== undefined) raise(dataKey(Buffer.from(bounds.gte, 'utf8')));
  if (bounds.lt !== undefined) cap(dataKey(Buffer.from(bounds.lt, 'utf8')));
  if (bounds.cursor !== undefined) {
    // The smallest key above the cursor's key is that key ‖ 0x00.
    raise(Buffer.concat([dataKey(Buffer.from(decodeCursor(bounds.cursor), 'utf8')), Buffer.of(0)]));
  }
  return Buffer.compare(lower, upper) < 0 ? { gte: lower, lt: upper } : null;
}

/**
 * One page of up to `limit` records in `range`; without `includeDead`,
 * tombstones and records expired at `nowMs` are skipped (and do not count).
 */
export async function scanPage(
  db: LevelLike, encodings: BinaryEncodings | undefined, range: { gte: Buffer; lt: Buffer } | null,
  limit: number, includeDead: boolean, nowMs: number,
): Promise<ScanPage> {
  const records: StoredRecord[] = [];
  if (range === null) return { records, next: null };
  const it = db.iterator({ gte: range.gte, lt: range.lt, ...encodings });
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
