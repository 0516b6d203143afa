import { describe, expect, it } from 'vitest';
import { digestOfEntries } from './digest.ts';
import { DigestJournal } from './digest-journal.ts';
import { DIGEST_BYTES, bucketOf, hashKey, sha256Latin1 } from './hash.ts';
import { dataKey, indexKey, indexValue } from './keyspace.ts';
import { CHECKPOINT_KEY, COUNTS_KEY, encodeMeta } from './meta.ts';
import { PURGE_SCAN_MAX, planPurge } from './purge.ts';

const BITS = 1;
type Entry = { key: string; ms: number; tombstone: boolean };
const version = (ms: number) => ({ ms, counter: 0, node: 'n1' });
const indexEntry = (e: Entry): [Buffer, Buffer] => {
  const keyBytes = Buffer.from(e.key, 'utf8');
  return [indexKey(sha256Latin1(keyBytes), keyBytes), indexValue(e.tombstone, version(e.ms))];
};
const asDigestEntry = (e: Entry) => ({ key: e.key, version: version(e.ms), tombstone: e.tombstone });

/** A journal whose buckets hold `entries`. */
function journalHolding(entries: Entry[]): DigestJournal {
  const digests = new Uint8Array(2 ** BITS * DIGEST_BYTES);
  for (let b = 0; b < 2 ** BITS; b++) {
    digests.set(digestOfEntries(entries.filter((e) => bucketOf(hashKey(e.key), BITS) === b).map(asDigestEntry)), b * DIGEST_BYTES);
  }
  return new DigestJournal({ digests, lastSeq: 0, checkpointSeq: 0, counts: undefined, dirtyPages: new Set(), journalBytes: 0 }, BITS, 1 << 20, CHECKPOINT_KEY, COUNTS_KEY, encodeMeta);
}

describe('planPurge: one purge step', () => {
  const entries: Entry[] = [
    { key: 'live-old', ms: 1, tombstone: false },
    { key: 'dead-old', ms: 1, tombstone: true },
    { key: 'dead-at-cutoff', ms: 10, tombstone: true },
    { key: 'dead-new', ms: 20, tombstone: true },
    { key: 'dead-older', ms: 0, tombstone: true },
  ];
  const index = entries.map(indexEntry).sort((a, b) => Buffer.compare(a[0], b[0]));

  it.each([
    ['nothing before the first tombstone', 0, []],
    ['only tombstones strictly older than the cut-off; never a live record', 10, ['dead-old', 'dead-older']],
    ['every tombstone before a late cut-off', 100, ['dead-old', 'dead-at-cutoff', 'dead-new', 'dead-older']],
  ])('%s', (_name, beforeMs, purged) => {
    const plan = planPurge(index, beforeMs, journalHolding(entries), BITS);
    expect([...plan.keys].sort()).toEqual([...purged].sort());
    // Deletes of the data entry and the index entry of each.
    expect(plan.batch).toHaveLength(2 * purged.length);
    for (const key of purged) expect(plan.batch).toContainEqual({ type: 'del', key: dataKey(Buffer.from(key)) });
    // Each staged digest is that of the bucket without the purged entries.
    const left = entries.filter((e) => !purged.includes(e.key));
    for (const [bucket, d] of plan.staged) {
      expect(Buffer.from(d).toString('hex')).toBe(
        Buffer.from(digestOfEntries(left.filter((e) => bucketOf(hashKey(e.key), BITS) === bucket).map(asDigestEntry))).toString('hex'));
    }
    // Fewer entries than a full step: the range is done.
    expect(plan.next).toBeNull();
  });

  it('a full step continues just above its last index key', () => {
    const many = Array.from({ length: PURGE_SCAN_MAX }, (_, i) => indexEntry({ key: `k${i}`, ms: 1, tombstone: false }))
      .sort((a, b) => Buffer.compare(a[0], b[0]));
    const plan = planPurge(many, 100, journalHolding([]), BITS);
    expect(plan.keys).toEqual([]);
    expect(plan.next).toEqual(Buffer.concat([(many.at(-1) as [Buffer, Buffer])[0], Buffer.of(0)]));
  });
});
