import { bucketOfHashBytes } from './hash.ts';
import { bucketIndexRange, readIndexValue } from './keyspace.ts';
import type { BinaryEncodings, LevelLike } from './level.ts';
import type { BucketEntry } from './types.ts';

/**
 * Reading the anti-entropy index by bucket. A bucket is one contiguous range
 * of index keys (keyspace.ts), so its entries are one range read, already in
 * `(keyHash, key bytes)` order. Repair asks for many buckets at once; nearby
 * ones share a range read.
 */

/** Buckets at most this far apart are read with one range read: reading a few unwanted ones costs less than another read. */
export const RUN_GAP_BUCKETS = 4;

/** Sorted distinct buckets as runs `[from, to)` to read, each spanning buckets at most `gap` apart. */
export function bucketRuns(sorted: readonly number[], gap: number): [from: number, to: number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) - (sorted[j] as number) <= gap) j++;
    runs.push([sorted[i] as number, (sorted[j] as number) + 1]);
    i = j + 1;
  }
  return runs;
}

/**
 * The entries of each of `buckets` (checked, any order, repeats allowed), in
 * the same order; a repeated bucket gets its own copy of the array.
 */
export async function readBucketEntries(
  db: LevelLike, encodings: BinaryEncodings | undefined, bucketBits: number, buckets: readonly number[],
): Promise<BucketEntry[][]> {
  const wanted = new Map<number, BucketEntry[]>();
  for (const b of buckets) wanted.set(b, []);
  for (const [from, to] of bucketRuns([...wanted.keys()].sort((x, y) => x - y), RUN_GAP_BUCKETS)) {
    const it = db.iterator({ ...bucketIndexRange(from, to, bucketBits), ...encodings });
    try {
      for (;;) {
        const chunk = await it.nextv(1000);
        if (chunk.length === 0) break;
        for (const [k, v] of chunk) {
          const list = wanted.get(bucketOfHashBytes(k, 1, bucketBits));
          if (list === undefined) continue;
          const { tombstone, version } = readIndexValue(v);
          list.push({ key: k.toString('utf8', 9), keyHash: k.readBigUInt64BE(1), version, tombstone });
        }
      }
    } finally {
      await it.close();
    }
  }
  const given = new Set<number>();
  return buckets.map((b) => {
    const list = wanted.get(b) as BucketEntry[];
    if (given.has(b)) return list.slice();
    given.add(b);
    return list;
  });
}
