import type { DigestJournal } from './digest-journal.ts';
import { bucketOfHashBytes, entryDigest, xorDigestInto } from './hash.ts';
import { dataKey, readIndexValue } from './keyspace.ts';
import type { BinaryEncodings, LevelBatchOp, LevelLike } from './level.ts';

/**
 * Purging tombstones, one bounded step at a time. A step reads at most
 * `PURGE_SCAN_MAX` index entries of its range (one range read: the index
 * holds every key's version and tombstone flag, so no record is read),
 * deletes the data and index entries of the tombstones older than the
 * cut-off, and takes their entries out of their buckets' digests. Each step
 * is one job of the commit queue, alone in its batch, so purging a large
 * range never holds up writes for long.
 */

/** Most index entries one purge step reads, so purging never stalls writes for long. */
export const PURGE_SCAN_MAX = 4096;

/** A step's index entries: [index key, index value], in key order. */
export async function readPurgeRange(db: LevelLike, encodings: BinaryEncodings | undefined, gte: Buffer, lt: Buffer): Promise<[Buffer, Buffer][]> {
  const it = db.iterator({ gte, lt, limit: PURGE_SCAN_MAX, ...encodings });
  try {
    return await it.all();
  } finally {
    await it.close().catch(() => undefined);
  }
}

/** What a step writes and what it leaves. */
export interface PurgePlan {
  /** Deletes of the purged tombstones' data and index entries. */
  readonly batch: LevelBatchOp[];
  /** Digests of the buckets that lost entries, staged. */
  readonly staged: Map<number, Buffer>;
  /** The purged keys, to drop from the read cache. */
  readonly keys: string[];
  /** How many of them were live records (only with `all`). */
  readonly live: number;
  /** Index key where the next step starts; null when this step reached the end of the range. */
  readonly next: Buffer | null;
}

/**
 * Plans one step over `entries` (from `readPurgeRange`): tombstones with
 * `version.ms < beforeMs` go — or, with `all`, every record (`dropRange`).
 */
export function planPurge(entries: readonly [Buffer, Buffer][], beforeMs: number, journal: DigestJournal, bucketBits: number, all = false): PurgePlan {
  const batch: LevelBatchOp[] = [];
  const staged = new Map<number, Buffer>();
  const keys: string[] = [];
  let live = 0;
  for (const [k, v] of entries) {
    const { tombstone, version } = readIndexValue(v);
    if (!all && (!tombstone || version.ms >= beforeMs)) continue;
    if (!tombstone) live++;
    const keyBytes = k.subarray(9);
    batch.push({ type: 'del', key: dataKey(keyBytes) }, { type: 'del', key: k });
    const bucket = bucketOfHashBytes(k, 1, bucketBits);
    let d = staged.get(bucket);
    if (d === undefined) {
      d = journal.stage(bucket, null);
      staged.set(bucket, d);
    }
    xorDigestInto(d, 0, entryDigest(keyBytes, v));
    keys.push(keyBytes.toString('utf8'));
  }
  const last = entries[entries.length - 1];
  // The smallest index key above the last one read is that key ‖ 0x00.
  const next = entries.length < PURGE_SCAN_MAX || last === undefined ? null : Buffer.concat([last[0], Buffer.of(0)]);
  return { batch, staged, keys, live, next };
}
