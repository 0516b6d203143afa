import { DIGEST_BYTES } from './hash.ts';
import { VERSION_FIXED_BYTES, readVersionBytes, writeVersionBytes } from './version.ts';
import type { Version } from './types.ts';

/**
 * Layout of the store's keys inside its LevelDB (or sublevel). Every key
 * starts with one ASCII byte naming its keyspace. These bytes are part of the
 * on-disk format: append-only.
 *
 *   'd' ‖ key UTF-8                       -> record (record.ts encodeRecordValue)
 *   'i' ‖ keyHash u64 BE ‖ key UTF-8      -> tombstone u8 ‖ ms u64 BE ‖ counter u32 BE ‖ node ASCII
 *   'g' ‖ bucket u32 BE                   -> 16-byte digest (format 1 only; migrated to pages on open)
 *   'p' ‖ page u32 BE                     -> digests of buckets [256·page, 256·page + 256), 16 bytes each
 *   'j' ‖ seq u64 BE                      -> digest journal entry: (bucket u32 BE ‖ 16-byte digest)*
 *   'm' ‖ name ASCII                      -> MessagePack value (meta: format, nodeId, bucketBits, hlc, counts, digestCheckpoint)
 *
 * Index keys sort by (keyHash, key bytes), and a bucket is the top B bits of
 * keyHash, so one bucket is one contiguous range of index keys.
 */
export const DATA = 0x64; // 'd'
export const INDEX = 0x69; // 'i'
export const DIGEST = 0x67; // 'g'
export const PAGE = 0x70; // 'p'
export const JOURNAL = 0x6a; // 'j'
export const META = 0x6d; // 'm'

export function dataKey(keyBytes: Uint8Array): Buffer {
  const k = Buffer.allocUnsafe(1 + keyBytes.length);
  k[0] = DATA;
  k.set(keyBytes, 1);
  return k;
}

/**
 * The index key of a key, from a latin1 string (one char per byte) whose
 * first 8 characters are its key hash: a SHA-256 result taken as latin1, or
 * a hash memo (prepare-group.ts).
 */
export function indexKey(hashLatin1: string, keyBytes: Uint8Array): Buffer {
  const k = Buffer.allocUnsafe(9 + keyBytes.length);
  k[0] = INDEX;
  k.write(hashLatin1, 1, 8, 'latin1');
  k.set(keyBytes, 9);
  return k;
}

export function digestKey(bucket: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = DIGEST;
  k.writeUInt32BE(bucket, 1);
  return k;
}

export function pageKey(page: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = PAGE;
  k.writeUInt32BE(page, 1);
  return k;
}

/** Journal key of a sequence number below 2^53, big-endian so keys sort by seq. */
export function journalKey(seq: number): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = JOURNAL;
  k.writeUInt32BE(Math.floor(seq / 2 ** 32), 1);
  k.writeUInt32BE(seq % 2 ** 32, 5);
  return k;
}

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(META), Buffer.from(name, 'latin1')]);
}

/** The range holding every key of one keyspace. */
export function keyspaceRange(space: number): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.of(space), lt: Buffer.of(space + 1) };
}

/** Index key range of buckets [from, to) with 2^bits buckets. */
export function bucketIndexRange(from: number, to: number, bits: number): { gte: Buffer; lt: Buffer } {
  return { gte: bucketStart(from, bits), lt: bucketStart(to, bits) };
}

function bucketStart(bucket: number, bits: number): Buffer {
  if (bucket >= 2 ** bits) return Buffer.of(INDEX + 1);
  const k = Buffer.alloc(9);
  k[0] = INDEX;
  if (bits > 0) k.writeUInt32BE((bucket << (32 - bits)) >>> 0, 1);
  return k;
}

export function indexValue(tombstone: boolean, v: Version): Buffer {
  const b = Buffer.allocUnsafe(1 + VERSION_FIXED_BYTES + v.node.length);
  b[0] = tombstone ? 1 : 0;
  writeVersionBytes(b, 1, v);
  return b;
}

export function readIndexValue(b: Buffer): { tombstone: boolean; version: Version } {
  return { tombstone: b[0] === 1, version: readVersionBytes(b, 1, b.length) };
}

export const ZERO_DIGEST = new Uint8Array(DIGEST_BYTES);
