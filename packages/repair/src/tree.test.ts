import { hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RangeTree } from './tree.ts';

const sha = (...parts: Uint8Array[]): Buffer => hash('sha256', Buffer.concat(parts), 'buffer');
const salt = Buffer.from('0123456789abcdef', 'hex');
const digests = [0, 1, 2, 3].map((i) => Buffer.alloc(16, i + 1));

describe('RangeTree', () => {
  it('builds the documented tree: inner = H(salt ‖ left ‖ right) over raw digests', () => {
    const tree = RangeTree.build(digests, salt);
    const l = sha(salt, digests[0] as Buffer, digests[1] as Buffer);
    const r = sha(salt, digests[2] as Buffer, digests[3] as Buffer);
    expect(tree.depth).toBe(2);
    expect(Buffer.from(tree.root())).toEqual(sha(salt, l, r));
    expect(Buffer.from(tree.nodeHash(1, 1))).toEqual(r);
    expect(Buffer.from(tree.nodeHash(2, 3))).toEqual(sha(salt, digests[3] as Buffer));
  });

  it('a one-bucket range has the salted leaf as its root', () => {
    const tree = RangeTree.build([digests[0] as Buffer], salt);
    expect(tree.depth).toBe(0);
    expect(Buffer.from(tree.root())).toEqual(sha(salt, digests[0] as Buffer));
  });

  it('descendantHashes gives the 2^span descendants of each parent, cut to hashBytes', () => {
    const tree = RangeTree.build(digests, salt);
    const cut = (level: number, i: number): Uint8Array => tree.nodeHash(level, i).subarray(0, 6);
    expect(Buffer.from(tree.descendantHashes(2, 1, [1], 6))).toEqual(Buffer.concat([cut(2, 2), cut(2, 3)]));
    expect(Buffer.from(tree.descendantHashes(2, 2, [0], 6))).toEqual(Buffer.concat([cut(2, 0), cut(2, 1), cut(2, 2), cut(2, 3)]));
    expect(Buffer.from(tree.descendantHashes(1, 1, [0], 32))).toEqual(Buffer.concat([tree.nodeHash(1, 0), tree.nodeHash(1, 1)]));
  });

  it('flatRoot hashes the salt, a tag and every digest in order', () => {
    expect(Buffer.from(RangeTree.flatRoot(digests, salt))).toEqual(sha(salt, Buffer.from([0]), ...digests));
    expect(Buffer.from(RangeTree.flatRoot(digests.slice().reverse(), salt))).not.toEqual(Buffer.from(RangeTree.flatRoot(digests, salt)));
  });

  it('the salt changes every hash; one changed digest changes the root', () => {
    const a = RangeTree.build(digests, salt);
    expect(Buffer.from(RangeTree.build(digests, Buffer.alloc(8)).root())).not.toEqual(Buffer.from(a.root()));
    const changed = digests.slice();
    changed[2] = Buffer.alloc(16, 9);
    const b = RangeTree.build(changed, salt);
    expect(Buffer.from(b.root())).not.toEqual(Buffer.from(a.root()));
    expect(Buffer.from(b.nodeHash(1, 0))).toEqual(Buffer.from(a.nodeHash(1, 0)));
  });

  it('a large range built in blocks is the same complete tree', () => {
    const many = Array.from({ length: 2 ** 14 }, (_, i) => hash('sha256', String(i), 'buffer').subarray(0, 16));
    const tree = RangeTree.build(many, salt);
    // Reference: plain bottom-up construction.
    let level: Buffer[] = many.map((d) => Buffer.from(d));
    const levels: Buffer[][] = [];
    while (level.length > 1) {
      const up: Buffer[] = [];
      for (let i = 0; i < level.length; i += 2) up.push(sha(salt, level[i] as Buffer, level[i + 1] as Buffer));
      levels.unshift(up);
      level = up;
    }
    expect(tree.depth).toBe(14);
    expect(Buffer.from(tree.root())).toEqual(levels[0]?.[0]);
    for (const [t, i] of [[1, 1], [2, 3], [3, 5], [4, 9], [12, 4000], [13, 8191]] as const) {
      expect(Buffer.from(tree.nodeHash(t, i)), `node ${t}/${i}`).toEqual(levels[t]?.[i]);
    }
  });

  it('refuses a leaf count that is not a power of two', () => {
    expect(() => RangeTree.build(digests.slice(0, 3), salt)).toThrow();
  });
});
