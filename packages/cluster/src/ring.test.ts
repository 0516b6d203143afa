import { describe, expect, it } from 'vitest';
import { createRandom } from '@hearsay/sim';
import { compareEntries, decodeRing, EMPTY_RING, encodeRing, mergeRings, nextEntry, ringHash, ringVersion, withEntry, type Ring, type RingEntry, type RingStatus } from './ring.ts';

const entry = (id: string, status: RingStatus, version: number, by = id, instance = `i-${id}`): RingEntry => ({ id, status, version, by, instance, gossip: '' });
const ringOf = (...entries: RingEntry[]): Ring => entries.reduce<Ring>((r, e) => withEntry(r, e), EMPTY_RING);

describe('compareEntries', () => {
  it.each([
    { a: entry('n1', 'normal', 2), b: entry('n1', 'leaving', 1), sign: 1, why: 'a higher version wins whatever the status' },
    { a: entry('n1', 'joining', 3), b: entry('n1', 'normal', 3), sign: -1, why: 'at one version the later status wins' },
    { a: entry('n1', 'removed', 3, 'n2'), b: entry('n1', 'normal', 3), sign: 1, why: 'a removal beats the member\u2019s own entry of the same version' },
    { a: entry('n1', 'normal', 3, 'n1', 'x'), b: entry('n1', 'normal', 3, 'n1', 'y'), sign: -1, why: 'then the instance decides' },
    { a: entry('n1', 'normal', 3), b: entry('n1', 'normal', 3), sign: 0, why: 'equal entries are equal' },
  ])('$why', ({ a, b, sign }) => {
    expect(Math.sign(compareEntries(a, b))).toBe(sign);
    expect(Math.sign(compareEntries(b, a)) + sign).toBe(0);
  });
});

describe('mergeRings', () => {
  it('keeps the winner per id and says whether anything changed', () => {
    const mine = ringOf(entry('n1', 'normal', 1), entry('n2', 'joining', 2));
    const theirs = ringOf(entry('n2', 'normal', 3), entry('n3', 'joining', 4));
    const { ring, changed } = mergeRings(mine, theirs);
    expect(changed).toBe(true);
    expect(encodeRing(ring).map((e) => `${e.id}:${e.status}@${e.version}`)).toEqual(['n1:normal@1', 'n2:normal@3', 'n3:joining@4']);
    expect(mergeRings(ring, mine)).toEqual({ ring, changed: false });
  });

  it('is commutative, associative and idempotent (random rings, seed 16)', () => {
    const random = createRandom(16);
    const statuses: RingStatus[] = ['joining', 'normal', 'leaving', 'left', 'removing', 'removed'];
    const randomRing = (): Ring => {
      let r: Ring = EMPTY_RING;
      for (let i = 0; i < 6; i++) {
        const id = `n${random.int(5)}`;
        r = withEntry(r, entry(id, random.pick(statuses), 1 + random.int(4), random.pick([id, 'n9']), random.pick(['a', 'b'])));
      }
      return r;
    };
    for (let run = 0; run < 300; run++) {
      const [a, b, c] = [randomRing(), randomRing(), randomRing()];
      const ab = mergeRings(a, b).ring;
      expect(ringHash(ab)).toBe(ringHash(mergeRings(b, a).ring));
      expect(ringHash(mergeRings(ab, c).ring)).toBe(ringHash(mergeRings(a, mergeRings(b, c).ring).ring));
      expect(mergeRings(ab, ab).changed).toBe(false);
      expect(mergeRings(ab, a).changed).toBe(false);
    }
  });
});

describe('nextEntry and ringVersion', () => {
  it('stamps above every version known, so a later entry wins over what its writer saw', () => {
    const ring = ringOf(entry('n1', 'normal', 7), entry('n2', 'normal', 3));
    expect(ringVersion(ring)).toBe(7);
    const e = nextEntry(ring, { id: 'n2', status: 'leaving', by: 'n2', instance: 'i-n2', gossip: '' });
    expect(e.version).toBe(8);
    expect(withEntry(ring, e).get('n2')?.status).toBe('leaving');
    expect(ringVersion(EMPTY_RING)).toBe(0);
  });
});

describe('ringHash', () => {
  it('is equal for equal rings built in any order, and differs otherwise', () => {
    const a = ringOf(entry('n1', 'normal', 1), entry('n2', 'normal', 2));
    const b = ringOf(entry('n2', 'normal', 2), entry('n1', 'normal', 1));
    expect(ringHash(a)).toBe(ringHash(b));
    expect(ringHash(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(ringHash(withEntry(a, entry('n2', 'leaving', 3)))).not.toBe(ringHash(a));
  });
});

describe('decodeRing', () => {
  it('round-trips the encoding', () => {
    const ring = ringOf(entry('n1', 'normal', 1), { ...entry('n2', 'removing', 5, 'n1'), gossip: '10.0.0.2:7946' });
    expect(ringHash(decodeRing(JSON.parse(JSON.stringify(encodeRing(ring)))))).toBe(ringHash(ring));
  });

  it.each([
    { input: {}, why: 'not an array' },
    { input: [null], why: 'an entry that is not a map' },
    { input: [{ id: 'n1', status: 'gone', version: 1, by: 'n1' }], why: 'an unknown status' },
    { input: [{ id: 'n1', status: 'normal', version: 0, by: 'n1' }], why: 'a version below 1' },
    { input: [{ id: 'n1', status: 'normal', version: 1.5, by: 'n1' }], why: 'a fractional version' },
    { input: [{ id: '', status: 'normal', version: 1, by: 'n1' }], why: 'an empty id' },
    { input: [{ id: 'x'.repeat(129), status: 'normal', version: 1, by: 'n1' }], why: 'an id over 128 characters' },
    { input: [{ id: 'n1', status: 'normal', version: 1 }], why: 'no writer' },
    { input: Array.from({ length: 4097 }, (_, i) => ({ id: `n${i}`, status: 'normal', version: 1, by: 'n' })), why: 'more than 4096 entries' },
  ])('refuses $why with BAD_REQUEST', ({ input }) => {
    expect(() => decodeRing(input)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
  });
});
