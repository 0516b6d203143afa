import { hash } from 'node:crypto';

/** Length of a bucket digest and of one entry's contribution to it. */
export const DIGEST_BYTES = 16;
/** Largest supported `bucketBits` (2^20 buckets = 16 MiB of digests in memory). */
export const BUCKET_BITS_MAX = 20;

/**
 * The 64-bit key hash: the first 8 bytes, big-endian, of SHA-256 over the
 * key's UTF-8 bytes. Part of the on-disk format (index keys are ordered by it)
 * and of the cluster's partition map (partitions are its top bits).
 */
export function hashKey(key: string): bigint {
  // A latin1 ('binary') string result costs less than a Buffer one: no Buffer is allocated.
  const h = hash('sha256', key, 'binary');
  return (BigInt(latin1U32(h, 0)) << 32n) | BigInt(latin1U32(h, 4));
}

/** SHA-256 of bytes as a 32-character latin1 string (one char per byte): the cheapest result Node gives. */
export function sha256Latin1(data: Uint8Array): string {
  return hash('sha256', data, 'binary');
}

function latin1U32(s: string, i: number): number {
  return ((s.charCodeAt(i) << 24) | (s.charCodeAt(i + 1) << 16) | (s.charCodeAt(i + 2) << 8) | s.charCodeAt(i + 3)) >>> 0;
}

/** The bucket of a key hash: its top `bucketBits` bits. */
export function bucketOf(keyHash: bigint, bucketBits: number): number {
  if (bucketBits === 0) return 0;
  return Number(BigInt.asUintN(64, keyHash) >> BigInt(64 - bucketBits));
}

/** The bucket from the 8-byte hash as stored in index keys. */
export function bucketOfHashBytes(hash8: Buffer, offset: number, bucketBits: number): number {
  if (bucketBits === 0) return 0;
  return hash8.readUInt32BE(offset) >>> (32 - bucketBits);
}

/**
 * One index entry's contribution to its bucket digest: the first 16 bytes of
 * SHA-256 over `u16 BE key length ‖ key UTF-8 ‖ index value` (the index value
 * is tombstone flag ‖ version bytes, see keyspace.ts).
 */
export function entryDigest(keyBytes: Uint8Array, indexValue: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(2 + keyBytes.length + indexValue.length);
  input.writeUInt16BE(keyBytes.length, 0);
  input.set(keyBytes, 2);
  input.set(indexValue, 2 + keyBytes.length);
  return hash('sha256', input, 'buffer').subarray(0, DIGEST_BYTES);
}

/** `entryDigest` as a latin1 string: its first 16 characters are the digest bytes. */
export function entryDigestLatin1(keyBytes: Uint8Array, indexValue: Uint8Array): string {
  const input = Buffer.allocUnsafe(2 + keyBytes.length + indexValue.length);
  input.writeUInt16BE(keyBytes.length, 0);
  input.set(keyBytes, 2);
  input.set(indexValue, 2 + keyBytes.length);
  return hash('sha256', input, 'binary');
}

/** target[0..16) ^= the 16 bytes held as latin1 characters in s[from..from+16) */
export function xorLatin1Into(target: Uint8Array, s: string, from: number): void {
  for (let i = 0; i < DIGEST_BYTES; i++) target[i] = (target[i] as number) ^ s.charCodeAt(from + i);
}

/** target[offset..offset+16) ^= d */
export function xorDigestInto(target: Uint8Array, offset: number, d: Uint8Array): void {
  for (let i = 0; i < DIGEST_BYTES; i++) target[offset + i] = (target[offset + i] as number) ^ (d[i] as number);
}
