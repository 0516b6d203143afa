import { DIGEST_BYTES, entryDigest, xorDigestInto } from './hash.ts';
import { indexValue } from './keyspace.ts';
import type { BucketEntry } from './types.ts';

/**
 * A bucket's digest is the XOR of its entries' digests (see `entryDigest`).
 * XOR makes it order-independent (any apply order gives the same digest) and
 * O(1) to update on each write: XOR out the key's old entry, XOR in the new.
 * A bucket holds each key at most once, so entries cannot cancel each other;
 * two different bucket contents collide with probability 2^-128 for honest
 * data. (A linear digest is not a defence against a peer crafting entries on
 * purpose; cluster peers are trusted.)
 */
export function bucketEntryDigest(entry: Pick<BucketEntry, 'key' | 'version' | 'tombstone'>): Uint8Array {
  return new Uint8Array(entryDigest(Buffer.from(entry.key, 'utf8'), indexValue(entry.tombstone, entry.version)));
}

/** The digest of a bucket recomputed from its entries; equals `bucketDigests` for a consistent store. */
export function digestOfEntries(entries: Iterable<Pick<BucketEntry, 'key' | 'version' | 'tombstone'>>): Uint8Array {
  const d = new Uint8Array(DIGEST_BYTES);
  for (const e of entries) xorDigestInto(d, 0, bucketEntryDigest(e));
  return d;
}
