import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.ts';

describe('TokenBucket', () => {
  // [what, steps of [bytes, nowMs, expected wait]]
  const cases: [string, [number, number, number][]][] = [
    ['within the burst: no wait', [[500, 0, 0], [500, 0, 0]]],
    ['over the burst: wait for the debt', [[1500, 0, 500]]],
    ['refills with time', [[1000, 0, 0], [1000, 1000, 0], [1000, 1500, 500]]],
    ['never refills above the burst', [[0, 0, 0], [2000, 10_000, 1000]]],
    ['debt carries over', [[2000, 0, 1000], [0, 500, 500], [0, 1000, 0]]],
  ];
  it.each(cases)('%s', (_what, steps) => {
    const bucket = new TokenBucket(1000, 1000, 0);
    for (const [bytes, nowMs, wait] of steps) expect(bucket.take(bytes, nowMs)).toBe(wait);
  });

  it('refuses a non-positive rate', () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
    expect(() => new TokenBucket(1, -1, 0)).toThrow(RangeError);
  });
});
