import type { BucketEntry } from '@hearsay/storage';

/** Bytes per entry fingerprint on the wire. */
export const FINGERPRINT_BYTES = 4;

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const NODE_CACHE_MAX = 1024;

/**
 * 32-bit fingerprints of bucket entries `(keyHash, version, tombstone)`,
 * seeded by the session salt (MurmurHash3 mixing). Two sides compare these
 * instead of full versions: equal entries always match; unequal ones match by
 * accident with probability ~2^-32 per pair, independently per session
 * because the seed changes. Not a cryptographic MAC: it guards against
 * accidents, not a hostile peer (peers are authenticated cluster members).
 */
export class Fingerprinter {
  private readonly seed: number;
  private readonly nodeHashes = new Map<string, number>();

  constructor(salt: Uint8Array) {
    this.seed = salt.length >= 4
      ? (((salt[0] as number) << 24) | ((salt[1] as number) << 16) | ((salt[2] as number) << 8) | (salt[3] as number)) >>> 0
      : 0;
  }

  private nodeHash(node: string): number {
    let h = this.nodeHashes.get(node);
    if (h === undefined) {
      h = this.seed ^ 0x9e3779b9;
      for (let i = 0; i < node.length; i++) h = mix(h, node.charCodeAt(i));
      h = finish(h ^ node.length);
      if (this.nodeHashes.size >= NODE_CACHE_MAX) this.nodeHashes.clear();
      this.nodeHashes.set(node, h);
    }
    return h;
  }

  of(entry: BucketEntry): number {
    const kh = BigInt.asUintN(64, entry.keyHash);
    const v = entry.version;
    let h = this.seed;
    h = mix(h, Number(kh & 0xffffffffn));
    h = mix(h, Number(kh >> 32n));
    h = mix(h, v.ms >>> 0);
    h = mix(h, Math.floor(v.ms / 0x1_0000_0000));
    h = mix(h, v.counter);
    h = mix(h, this.nodeHash(v.node));
    h = mix(h, entry.tombstone ? 1 : 0);
    return finish(h ^ 28);
  }

  /** Fingerprints of `entries`, big-endian u32 each, in entry order. */
  pack(entries: readonly BucketEntry[]): Uint8Array {
    const out = Buffer.allocUnsafe(entries.length * FINGERPRINT_BYTES);
    for (let i = 0; i < entries.length; i++) out.writeUInt32BE(this.of(entries[i] as BucketEntry), i * FINGERPRINT_BYTES);
    return out;
  }
}

/** Reads big-endian u32 fingerprints packed by `Fingerprinter.pack`. */
export function unpackFingerprints(bytes: Uint8Array): Uint32Array {
  const n = bytes.length / FINGERPRINT_BYTES;
  const out = new Uint32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = view.getUint32(i * FINGERPRINT_BYTES, false);
  return out;
}
