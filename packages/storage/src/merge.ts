import { compareVersions } from './version.ts';
import type { StoredRecord, Version } from './types.ts';

/**
 * Last-write-wins: the one rule that decides which of two records of a key
 * survives, wherever records meet — the store's `apply`, a coordinator's
 * read, listing and read repair, and a repair session. Every one of them
 * calls these functions, so replicas that saw the same records keep the same
 * one, whichever path brought each record.
 *
 * The higher version wins. Equal versions, which honest nodes never produce
 * for different contents (a version names one write of one node), are still
 * ordered, by a deterministic tie-break on the contents: a tombstone over a
 * live record, then no expiry over any expiry, a later expiry over an earlier
 * one, then content type and value bytes. So the order is total on records of
 * one key, and merging is commutative, associative and idempotent whatever
 * the input.
 */

/** What an anti-entropy index entry knows of a record: enough for the first two steps of the order. */
export interface VersionedEntry {
  readonly version: Version;
  readonly tombstone: boolean;
}

/**
 * The order restricted to what an index entry holds: version, then tombstone
 * over live. Where it is not 0, `compareRecords` of the two records has the
 * same sign (it begins with this comparison), so a side that sees only
 * entries — a repair session — decides as the store will.
 */
export function compareEntries(a: VersionedEntry, b: VersionedEntry): -1 | 0 | 1 {
  const c = compareVersions(a.version, b.version);
  if (c !== 0) return c;
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1;
  return 0;
}

/** The LWW order of two records of one key: > 0 when `a` wins over `b`, 0 only for equal contents. */
export function compareRecords(a: StoredRecord, b: StoredRecord): -1 | 0 | 1 {
  const c = compareEntries(a, b);
  if (c !== 0) return c;
  if (a.expiresAtMs !== b.expiresAtMs) {
    if (a.expiresAtMs === undefined) return 1;
    if (b.expiresAtMs === undefined) return -1;
    return a.expiresAtMs < b.expiresAtMs ? -1 : 1;
  }
  const ca = a.contentType ?? '';
  const cb = b.contentType ?? '';
  if (ca !== cb) return ca < cb ? -1 : 1;
  const v = Buffer.compare(a.value, b.value);
  return v < 0 ? -1 : v > 0 ? 1 : 0;
}

/** Whether `incoming` replaces `current` (absent: nothing stored): it is strictly higher. */
export function supersedes(incoming: StoredRecord, current: StoredRecord | null | undefined): boolean {
  return current === null || current === undefined || compareRecords(incoming, current) > 0;
}

/** The winner of two records of one key, either of which may be absent; `a` when they are equal. */
export function newer(a: StoredRecord | undefined, b: StoredRecord): StoredRecord;
export function newer(a: StoredRecord | undefined, b: StoredRecord | undefined): StoredRecord | undefined;
export function newer(a: StoredRecord | undefined, b: StoredRecord | undefined): StoredRecord | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareRecords(b, a) > 0 ? b : a;
}

/** The winner among records of one key (absent ones skipped); undefined when all are absent. */
export function newest(records: Iterable<StoredRecord | undefined>): StoredRecord | undefined {
  let best: StoredRecord | undefined;
  for (const r of records) best = newer(best, r);
  return best;
}

/** Whether the record reads as absent at `nowMs`: a tombstone, or expired. */
export function isDead(record: StoredRecord, nowMs: number): boolean {
  return record.tombstone || (record.expiresAtMs !== undefined && record.expiresAtMs <= nowMs);
}

/** Whether a record is there and reads as present at `nowMs` (the opposite of `isDead`, and false when absent). */
export function isLive(record: StoredRecord | undefined, nowMs: number): record is StoredRecord {
  return record !== undefined && !isDead(record, nowMs);
}
