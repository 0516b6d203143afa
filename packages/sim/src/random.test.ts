import { describe, expect, it } from 'vitest';
import { createRandom } from './random.ts';

describe('createRandom (sfc32)', () => {
  it('one seed gives one sequence; another seed another', () => {
    const a = createRandom(123);
    const b = createRandom(123);
    const c = createRandom(124);
    const sa = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(sa);
  });

  it('pins the sequence (a change of algorithm would silently change every simulation)', () => {
    const r = createRandom(1);
    expect(Array.from({ length: 3 }, () => r.nextUint32())).toMatchInlineSnapshot(`
      [
        792534090,
        3215351813,
        160231488,
      ]
    `);
  });

  it('is uniform enough: buckets of 100k draws within 3%', () => {
    const r = createRandom(99);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) buckets[r.int(10)]!++;
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(300);
  });

  it('next is in [0, 1), int in [0, n), range in [lo, hi)', () => {
    const r = createRandom(5);
    for (let i = 0; i < 10_000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
      const k = r.int(7);
      expect(Number.isInteger(k) && k >= 0 && k < 7).toBe(true);
      const y = r.range(-2, 3);
      expect(y >= -2 && y < 3).toBe(true);
    }
  });

  it('shuffle permutes in place; pick picks a member; fork is deterministic and independent', () => {
    const r = createRandom(8);
    const arr = [...Array(50).keys()];
    const out = r.shuffle(arr);
    expect(out).toBe(arr);
    expect([...out].sort((x, y) => x - y)).toEqual([...Array(50).keys()]);
    expect(out).not.toEqual([...Array(50).keys()]);
    expect([1, 2, 3]).toContain(r.pick([1, 2, 3]));
    expect(() => r.pick([])).toThrow(RangeError);
    const f1 = createRandom(8).fork();
    const f2 = createRandom(8).fork();
    expect(f1.next()).toBe(f2.next());
    expect(r.chance(0)).toBe(false);
    expect(r.chance(1)).toBe(true);
  });

  it('next can be passed around detached from its object', () => {
    const { next } = createRandom(3);
    expect(typeof next()).toBe('number');
  });
});
