import { RepairError } from './errors.ts';

/** A contiguous range of anti-entropy buckets [fromBucket, toBucket): the unit of repair. */
export interface BucketRange {
  readonly fromBucket: number;
  readonly toBucket: number;
}

/**
 * Checks that [from, to) lies inside a store of 2^bucketBits buckets and has a
 * power-of-two length (so its Merkle tree is complete), and returns the tree
 * depth, log2(to - from). The range need not be aligned. Throws INVALID_RANGE.
 */
export function rangeDepth(from: number, to: number, bucketBits: number): number {
  if (!Number.isInteger(bucketBits) || bucketBits < 0 || bucketBits > 30) {
    throw new RepairError('INVALID_RANGE', `bucketBits ${String(bucketBits)} is not an integer in 0..30`);
  }
  const buckets = 2 ** bucketBits;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > buckets || from >= to) {
    throw new RepairError('INVALID_RANGE', `bucket range [${String(from)}, ${String(to)}) is not inside [0, ${buckets})`);
  }
  const length = to - from;
  if ((length & (length - 1)) !== 0) {
    throw new RepairError('INVALID_RANGE', `bucket range length ${length} is not a power of two`);
  }
  return Math.log2(length);
}

/**
 * The bucket range of one partition when the key-hash space is cut into
 * `partitionCount` equal partitions (partitions and buckets are both top bits
 * of the key hash, so a partition is a contiguous, aligned bucket range).
 */
export function partitionBucketRange(partition: number, partitionCount: number, bucketBits: number): BucketRange {
  const buckets = 2 ** bucketBits;
  if (!Number.isInteger(partitionCount) || partitionCount < 1 || (partitionCount & (partitionCount - 1)) !== 0 || partitionCount > buckets) {
    throw new RepairError('INVALID_RANGE', `partitionCount ${String(partitionCount)} must be a power of two no larger than ${buckets}`);
  }
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount) {
    throw new RepairError('INVALID_RANGE', `partition ${String(partition)} is not in 0..${partitionCount - 1}`);
  }
  const perPartition = buckets / partitionCount;
  return { fromBucket: partition * perPartition, toBucket: (partition + 1) * perPartition };
}
