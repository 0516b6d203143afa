import { describe, expect, it } from 'vitest';
import { NonceCache } from './nonce-cache.ts';

describe('NonceCache', () => {
  it('admits a nonce once; the same nonce again is a replay', () => {
    const c = new NonceCache(30_000);
    expect(c.admit('a', 1000, 1000)).toBe('fresh');
    expect(c.admit('b', 1000, 1000)).toBe('fresh');
    expect(c.admit('a', 1000, 1001)).toBe('replayed');
    expect(c.replays).toBe(1);
    expect(c.size).toBe(2);
  });

  it('forgets nonces whose timestamps left the window (such requests are refused as stale anyway)', () => {
    const c = new NonceCache(30_000);
    c.admit('a', 1000, 1000);
    c.admit('b', 20_000, 20_000);
    c.admit('c', 40_000, 40_000); // a (1000) is now more than 30 s old
    expect(c.size).toBe(2);
    expect(c.floorMs).toBe(-Infinity);
  });

  it.each([
    // [max entries, requests (nonce, stamp), expected verdicts, floor after]
    { max: 2, requests: [['a', 10], ['b', 20], ['c', 30]], verdicts: ['fresh', 'fresh', 'fresh'], floor: 10 },
    { max: 2, requests: [['a', 10], ['b', 20], ['c', 30], ['a', 10]], verdicts: ['fresh', 'fresh', 'fresh', 'too_old'], floor: 10 },
    { max: 2, requests: [['a', 10], ['b', 20], ['c', 30], ['d', 5]], verdicts: ['fresh', 'fresh', 'fresh', 'too_old'], floor: 10 },
    { max: 2, requests: [['a', 25], ['b', 20], ['c', 30], ['d', 21]], verdicts: ['fresh', 'fresh', 'fresh', 'too_old'], floor: 25 },
    { max: 3, requests: [['a', 10], ['b', 20], ['c', 30], ['b', 20]], verdicts: ['fresh', 'fresh', 'fresh', 'replayed'], floor: -Infinity },
  ])('when full, forgets the oldest and refuses anything stamped at or before it: $requests', ({ max, requests, verdicts, floor }) => {
    const c = new NonceCache(30_000, max);
    expect(requests.map(([n, ts]) => c.admit(n as string, ts as number, 100))).toEqual(verdicts);
    expect(c.floorMs).toBe(floor);
    expect(c.size).toBeLessThanOrEqual(max);
  });

  it('stays bounded under a flood of fresh nonces, and a forgotten nonce is never accepted again', () => {
    const c = new NonceCache(30_000, 1000);
    for (let i = 0; i < 10_000; i++) expect(c.admit(`n${i}`, 1_000_000 + i, 1_000_000 + i)).toBe('fresh');
    expect(c.size).toBe(1000);
    expect(c.forgotten).toBe(9000);
    for (let i = 0; i < 10_000; i++) expect(c.admit(`n${i}`, 1_000_000 + i, 1_010_000)).not.toBe('fresh');
  });

  it('refuses a bound below 1', () => {
    expect(() => new NonceCache(1000, 0)).toThrow(RangeError);
  });
});
