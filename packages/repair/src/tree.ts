import { hash } from 'node:crypto';
import { MerkleTree } from 'merkletreejs';

/** Length of a full node hash (SHA-256). The root is compared at this length. */
export const NODE_HASH_BYTES = 32;
/** Length of the per-session salt mixed into every node hash and fingerprint. */
export const SALT_BYTES = 8;

/** Leaves per merkletreejs build (see RangeTree.build). */
const BLOCK_DEPTH = 12;

/** Separates the flat root's input from any tree node's. */
const FLAT_ROOT_TAG = new Uint8Array([0]);

function sha256(data: Buffer): Buffer {
  return hash('sha256', data, 'buffer');
}

/**
 * A complete binary Merkle tree over the digests of a contiguous,
 * power-of-two-long bucket range, built with merkletreejs and then flattened
 * (one Uint8Array per level) so a 2^16-leaf tree costs ~4 MiB, not 130k
 * Buffers.
 *
 * Levels are numbered from the top: level 0 is the root, level `depth` the
 * leaves (buckets). Every hash is salted with the session's salt, so a
 * truncated-hash collision in one session is independent of the next one:
 *   leaf      = SHA-256(salt ‖ bucketDigest)   (computed on demand)
 *   inner     = SHA-256(salt ‖ left ‖ right)   (left/right: the raw digests
 *               just above the leaves, the inner hashes above that)
 * The two input lengths differ, so a leaf never hashes like an inner node.
 */
export class RangeTree {
  readonly depth: number;
  readonly leafCount: number;
  private readonly salt: Buffer;
  private readonly digests: readonly Uint8Array[];
  /** inner[t] holds the 2^t full hashes of level t, for t < depth. */
  private readonly inner: Buffer[];

  private constructor(salt: Buffer, digests: readonly Uint8Array[], inner: Buffer[]) {
    this.salt = salt;
    this.digests = digests;
    this.inner = inner;
    this.leafCount = digests.length;
    this.depth = Math.log2(digests.length);
  }

  /**
   * `digests.length` must be a power of two (see rangeDepth). Large ranges
   * are built as subtrees of BLOCK_LEAVES leaves and a top tree over their
   * roots (the same complete tree), so merkletreejs's per-node Buffers never
   * exist for more than one block at a time.
   */
  static build(digests: readonly Uint8Array[], salt: Uint8Array): RangeTree {
    const n = digests.length;
    if (n < 1 || (n & (n - 1)) !== 0) throw new Error(`RangeTree needs a power-of-two leaf count, got ${n}`);
    const saltBuf = Buffer.from(salt);
    const depth = Math.log2(n);
    const inner: Buffer[] = [];
    for (let t = 0; t < depth; t++) inner.push(Buffer.allocUnsafe(2 ** t * NODE_HASH_BYTES));
    if (depth === 0) return new RangeTree(saltBuf, digests, inner);
    const options = { concatenator: (parts: Buffer[]) => Buffer.concat([saltBuf, ...parts]) };
    // Copies merkletreejs layers[1..top] (layers[0] = its leaves) into our
    // levels: its layer j is our level `leafLevel - j`, at node offset
    // `firstIndex >> j`.
    const copyLayers = (layers: Buffer[][], top: number, leafLevel: number, firstIndex: number): void => {
      for (let j = 1; j <= top; j++) {
        const layer = layers[j];
        if (layer === undefined || layer.length !== 2 ** (top - j)) throw new Error('merkletreejs returned an unexpected layer shape');
        const target = inner[leafLevel - j] as Buffer;
        const offset = (firstIndex >> j) * NODE_HASH_BYTES;
        for (let i = 0; i < layer.length; i++) (layer[i] as Buffer).copy(target, offset + i * NODE_HASH_BYTES);
      }
    };
    const blockDepth = Math.min(depth, BLOCK_DEPTH);
    const blockLeaves = 2 ** blockDepth;
    const roots: Buffer[] = [];
    for (let first = 0; first < n; first += blockLeaves) {
      const leaves = digests.slice(first, first + blockLeaves).map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength));
      const layers = new MerkleTree(leaves, sha256, options).getLayers();
      copyLayers(layers, blockDepth, depth, first);
      roots.push((layers[blockDepth] as Buffer[])[0] as Buffer);
    }
    const topDepth = depth - blockDepth;
    if (topDepth > 0) copyLayers(new MerkleTree(roots, sha256, options).getLayers(), topDepth, topDepth, 0);
    return new RangeTree(saltBuf, digests, inner);
  }

  /** The full hash of node `index` at `level`. */
  nodeHash(level: number, index: number): Uint8Array {
    if (level === this.depth) {
      const digest = this.digests[index];
      if (digest === undefined) throw new Error(`leaf ${index} out of range`);
      return sha256(Buffer.concat([this.salt, digest]));
    }
    const flat = this.inner[level];
    if (flat === undefined || index < 0 || index >= 2 ** level) throw new Error(`node ${level}/${index} out of range`);
    return flat.subarray(index * NODE_HASH_BYTES, (index + 1) * NODE_HASH_BYTES);
  }

  root(): Uint8Array {
    return this.nodeHash(0, 0);
  }

  /** The raw storage digest of leaf `index`. */
  leafDigest(index: number): Uint8Array | undefined {
    return this.digests[index];
  }

  /**
   * All 2^span descendants (at `level`) of each parent (at `level - span`),
   * each hash cut to `hashBytes`, concatenated in parent order: the body of a
   * LevelHashes reply.
   */
  descendantHashes(level: number, span: number, parents: readonly number[], hashBytes: number): Uint8Array {
    const fan = 2 ** span;
    const out = Buffer.allocUnsafe(parents.length * fan * hashBytes);
    let offset = 0;
    for (const p of parents) {
      for (let c = 0; c < fan; c++) {
        out.set(this.nodeHash(level, p * fan + c).subarray(0, hashBytes), offset);
        offset += hashBytes;
      }
    }
    return out;
  }

  /**
   * The hash a session compares first: SHA-256(salt ‖ 0x00 ‖ every digest of
   * the range). Equal exactly when the Merkle roots are (both are equal iff
   * all digests are, up to SHA-256 collisions), but one pass over ~1 MiB
   * instead of 2^16 hashes, so replicas that agree never build a tree.
   */
  static flatRoot(digests: readonly Uint8Array[], salt: Uint8Array): Uint8Array {
    return hash('sha256', Buffer.concat([salt, FLAT_ROOT_TAG, ...digests]), 'buffer');
  }
}
