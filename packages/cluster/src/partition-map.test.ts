import { describe, expect, it } from 'vitest';
import { bucketRangeOf, computePartitionMap, countMovedReplicas, partitionOfHash } from './partition-map.ts';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `node-${i + 1}`);

describe('partitionOfHash', () => {
  it.each([
    { hash: 0n, bits: 8, partition: 0 },
    { hash: 0xffff_ffff_ffff_ffffn, bits: 8, partition: 255 },
    { hash: 0x0100_0000_0000_0000n, bits: 8, partition: 1 },
    { hash: 0x00ff_ffff_ffff_ffffn, bits: 8, partition: 0 },
    { hash: 0x8000_0000_0000_0000n, bits: 1, partition: 1 },
    { hash: 0x1234_0000_0000_0000n, bits: 16, partition: 0x1234 },
    { hash: 0x1234_0000_0000_0000n, bits: 0, partition: 0 },
  ])('top $bits bits of $hash is $partition', ({ hash, bits, partition }) => {
    expect(partitionOfHash(hash, bits)).toBe(partition);
  });

  it('is aligned with storage buckets (top B bits)', () => {
    const B = 16;
    const P = 8;
    for (const hash of [0n, 0x0123_4567_89ab_cdefn, 0xfedc_ba98_7654_3210n, 0xffff_ffff_ffff_ffffn]) {
      const bucket = Number(hash >> BigInt(64 - B));
      const { fromBucket, toBucket } = bucketRangeOf(partitionOfHash(hash, P), P, B);
      expect(bucket).toBeGreaterThanOrEqual(fromBucket);
      expect(bucket).toBeLessThan(toBucket);
    }
  });
});

describe('bucketRangeOf', () => {
  it.each([
    { p: 0, P: 8, B: 16, range: { fromBucket: 0, toBucket: 256 } },
    { p: 255, P: 8, B: 16, range: { fromBucket: 65280, toBucket: 65536 } },
    { p: 3, P: 8, B: 8, range: { fromBucket: 3, toBucket: 4 } },
    { p: 0, P: 0, B: 16, range: { fromBucket: 0, toBucket: 65536 } },
  ])('partition $p of 2^$P over 2^$B buckets', ({ p, P, B, range }) => {
    expect(bucketRangeOf(p, P, B)).toEqual(range);
  });

  it('refuses partitions finer than buckets', () => {
    expect(() => bucketRangeOf(0, 8, 4)).toThrow(RangeError);
  });
});

describe('computePartitionMap', () => {
  it('is deterministic and independent of the order members are listed in', () => {
    const a = computePartitionMap(['c', 'a', 'e', 'b', 'd']);
    const b = computePartitionMap(['e', 'd', 'c', 'b', 'a', 'a']);
    expect(a.members).toEqual(['a', 'b', 'c', 'd', 'e']);
    for (let p = 0; p < 256; p++) expect(a.preferenceList(p)).toEqual(b.preferenceList(p));
  });

  it.each([
    { members: 0, rf: 3, effective: 0 },
    { members: 1, rf: 3, effective: 1 },
    { members: 2, rf: 3, effective: 2 },
    { members: 5, rf: 3, effective: 3 },
    { members: 5, rf: 5, effective: 5 },
    { members: 5, rf: 7, effective: 5 },
  ])('caps RF $rf at $members members', ({ members, rf, effective }) => {
    const map = computePartitionMap(ids(members), { replicationFactor: rf });
    expect(map.replicationFactor).toBe(effective);
    for (let p = 0; p < map.partitionCount; p++) {
      const list = map.preferenceList(p);
      expect(list.length).toBe(effective);
      expect(new Set(list).size).toBe(effective);
      expect(map.ranking(p).length).toBe(members);
      expect(map.ranking(p).slice(0, effective)).toEqual(list);
    }
  });

  it('lists each partition under exactly its replicas', () => {
    const map = computePartitionMap(ids(5));
    let total = 0;
    for (const m of map.members) {
      for (const p of map.partitionsOf(m)) expect(map.preferenceList(p)).toContain(m);
      total += map.partitionsOf(m).length;
    }
    expect(total).toBe(256 * 3);
    expect(map.partitionsOf('stranger')).toEqual([]);
  });

  // Balance: replicas per member relative to the fair share RF * partitions / N.
  it.each([
    { n: 3, maxSpread: 0 }, // RF = N: everyone holds everything
    { n: 5, maxSpread: 0.15 },
    { n: 10, maxSpread: 0.3 },
    { n: 20, maxSpread: 0.35 },
  ])('spreads 256 partitions x RF 3 over $n members within ±$maxSpread of the fair share', ({ n, maxSpread }) => {
    const map = computePartitionMap(ids(n));
    const fair = (256 * map.replicationFactor) / n;
    for (const m of map.members) {
      const share = map.partitionsOf(m).length;
      expect(Math.abs(share - fair) / fair).toBeLessThanOrEqual(maxSpread);
    }
  });

  it('spreads primaries (first in the list) too', () => {
    const map = computePartitionMap(ids(5));
    const primaries = new Map<string, number>();
    for (let p = 0; p < 256; p++) {
      const first = map.preferenceList(p)[0]!;
      primaries.set(first, (primaries.get(first) ?? 0) + 1);
    }
    for (const m of map.members) expect(primaries.get(m) ?? 0).toBeGreaterThan(256 / 5 / 2);
  });

  // Minimal movement: a join moves only the pairs the newcomer takes (ideally RF*P/(N+1));
  // a leave moves only the leaver's pairs; nobody else's assignments change.
  it.each([{ n: 3 }, { n: 4 }, { n: 5 }, { n: 9 }])('moves only the newcomer\'s share when one joins $n', ({ n }) => {
    const before = computePartitionMap(ids(n));
    const after = computePartitionMap([...ids(n), 'newcomer']);
    const moved = countMovedReplicas(before, after);
    expect(moved).toBe(after.partitionsOf('newcomer').length);
    const ideal = (256 * after.replicationFactor) / (n + 1);
    expect(moved).toBeLessThanOrEqual(ideal * 1.35);
    for (let p = 0; p < 256; p++) {
      // Every member still listed kept its place relative to the others.
      const kept = after.preferenceList(p).filter((m) => m !== 'newcomer');
      expect(before.preferenceList(p).slice(0, kept.length)).toEqual(kept);
    }
  });

  it.each([{ n: 4 }, { n: 5 }, { n: 9 }])('moves only the leaver\'s share when one of $n leaves', ({ n }) => {
    const before = computePartitionMap(ids(n));
    const leaver = 'node-2';
    const after = computePartitionMap(ids(n).filter((m) => m !== leaver));
    expect(countMovedReplicas(before, after)).toBe(before.partitionsOf(leaver).length);
    for (let p = 0; p < 256; p++) {
      const stayed = before.preferenceList(p).filter((m) => m !== leaver);
      expect(after.preferenceList(p).slice(0, stayed.length)).toEqual(stayed);
    }
  });

  it('rejects bad options', () => {
    expect(() => computePartitionMap(ids(3), { partitionBits: 17 })).toThrow(RangeError);
    expect(() => computePartitionMap(ids(3), { partitionBits: 1.5 })).toThrow(RangeError);
    expect(() => computePartitionMap(ids(3), { replicationFactor: 0 })).toThrow(RangeError);
    expect(() => computePartitionMap(ids(3)).preferenceList(256)).toThrow(RangeError);
  });
});
