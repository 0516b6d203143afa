import { createHash } from 'node:crypto';

/**
 * The partition map: which members replicate which slice of the key-hash
 * space.
 *
 * The 64-bit key-hash space is cut into 2^P partitions by the top P bits of
 * the hash, so partition p is exactly the storage buckets
 * [p << (B - P), (p + 1) << (B - P)) of a store with 2^B buckets (P <= B).
 *
 * Each partition's preference list comes from rendezvous (highest random
 * weight, HRW) hashing: every member gets a score sha256(member + partition)
 * per partition, and the partition's replicas are the RF members with the
 * highest scores. The map is a pure function of the set of member ids, so
 * every node with the same view computes the same map. When a member joins it
 * takes over only the (partition, slot) pairs where it now ranks in the top
 * RF (about RF/N of all pairs, the minimum possible); when one leaves, only
 * its own pairs move, each to the next member in that partition's ranking.
 * The ranking beyond RF is also where a write goes when a replica is down
 * (sloppy quorum stand-ins).
 */

export const DEFAULT_PARTITION_BITS = 8;
export const MAX_PARTITION_BITS = 16;

export interface PartitionMapOptions {
  /** 2^partitionBits partitions; default 8 (256 partitions). */
  readonly partitionBits?: number;
  /** Replicas per partition, capped at the member count; default 3. */
  readonly replicationFactor?: number;
}

export interface BucketRange {
  /** Inclusive. */
  readonly fromBucket: number;
  /** Exclusive. */
  readonly toBucket: number;
}

export interface PartitionMap {
  readonly partitionBits: number;
  readonly partitionCount: number;
  /** The configured RF capped at the member count. */
  readonly replicationFactor: number;
  /** The members the map was computed from, sorted. */
  readonly members: readonly string[];
  partitionOfHash(keyHash: bigint): number;
  /** The RF replicas of a partition, best first. Empty when there are no members. */
  preferenceList(partition: number): readonly string[];
  /** All members ordered by their HRW score for this partition, best first. */
  ranking(partition: number): readonly string[];
  /** The partitions a member replicates, ascending. */
  partitionsOf(member: string): readonly number[];
  /** The storage buckets of a partition for a store with 2^bucketBits buckets. */
  bucketRange(partition: number, bucketBits: number): BucketRange;
}

/** The partition of a 64-bit key hash: its top `partitionBits` bits. */
export function partitionOfHash(keyHash: bigint, partitionBits: number): number {
  return Number(BigInt.asUintN(64, keyHash) >> BigInt(64 - partitionBits));
}

export function bucketRangeOf(partition: number, partitionBits: number, bucketBits: number): BucketRange {
  if (bucketBits < partitionBits) {
    throw new RangeError(`bucketBits ${bucketBits} < partitionBits ${partitionBits}: a partition must be whole buckets`);
  }
  const shift = bucketBits - partitionBits;
  return { fromBucket: partition * 2 ** shift, toBucket: (partition + 1) * 2 ** shift };
}

/** HRW score of a member for a partition: 64 bits of sha256, as a bigint. */
export function hrwScore(member: string, partition: number): bigint {
  const digest = createHash('sha256').update(`${partition}\u0000${member}`).digest();
  return digest.readBigUInt64BE(0);
}

export function computePartitionMap(memberIds: Iterable<string>, options: PartitionMapOptions = {}): PartitionMap {
  const partitionBits = options.partitionBits ?? DEFAULT_PARTITION_BITS;
  if (!Number.isInteger(partitionBits) || partitionBits < 0 || partitionBits > MAX_PARTITION_BITS) {
    throw new RangeError(`partitionBits must be an integer in [0, ${MAX_PARTITION_BITS}], got ${partitionBits}`);
  }
  const rfWanted = options.replicationFactor ?? 3;
  if (!Number.isInteger(rfWanted) || rfWanted < 1) {
    throw new RangeError(`replicationFactor must be a positive integer, got ${rfWanted}`);
  }
  const members = [...new Set(memberIds)].sort();
  const partitionCount = 2 ** partitionBits;
  const replicationFactor = Math.min(rfWanted, members.length);

  const rankings: string[][] = [];
  const owned = new Map<string, number[]>(members.map((m) => [m, []]));
  for (let p = 0; p < partitionCount; p++) {
    const scored = members.map((m) => ({ m, s: hrwScore(m, p) }));
    // Ties are astronomically unlikely; break them by id so the order is total.
    scored.sort((a, b) => (a.s === b.s ? (a.m < b.m ? -1 : 1) : a.s > b.s ? -1 : 1));
    const ranking = scored.map((x) => x.m);
    rankings.push(ranking);
    for (let i = 0; i < replicationFactor; i++) owned.get(ranking[i]!)!.push(p);
  }
  const preference = rankings.map((r) => r.slice(0, replicationFactor));
  const checkPartition = (p: number): void => {
    if (!Number.isInteger(p) || p < 0 || p >= partitionCount) throw new RangeError(`no partition ${p}`);
  };

  return {
    partitionBits,
    partitionCount,
    replicationFactor,
    members,
    partitionOfHash: (h) => partitionOfHash(h, partitionBits),
    preferenceList(p) {
      checkPartition(p);
      return preference[p]!;
    },
    ranking(p) {
      checkPartition(p);
      return rankings[p]!;
    },
    partitionsOf: (m) => owned.get(m) ?? [],
    bucketRange: (p, bucketBits) => {
      checkPartition(p);
      return bucketRangeOf(p, partitionBits, bucketBits);
    },
  };
}

/** How many (partition, replica) assignments differ between two maps of the same partition count. */
export function countMovedReplicas(before: PartitionMap, after: PartitionMap): number {
  if (before.partitionCount !== after.partitionCount) throw new RangeError('maps differ in partition count');
  let moved = 0;
  for (let p = 0; p < before.partitionCount; p++) {
    const old = new Set(before.preferenceList(p));
    for (const m of after.preferenceList(p)) if (!old.has(m)) moved++;
  }
  return moved;
}
