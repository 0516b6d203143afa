import { describe, expect, it } from 'vitest';
import { remainingSuspicionMs, Suspicion, suspicionTimeoutMs } from './suspicion.ts';

describe('suspicionTimeoutMs (memberlist suspicionTimeout)', () => {
  it.each([
    // mult, n, interval, expected
    [3, 1, 1000, 3000],
    [3, 10, 1000, 3000],
    [3, 50, 1000, 5096],
    [3, 100, 1000, 6000],
    [4, 100, 1000, 8000],
    [4, 1000, 1000, 12000],
    [3, 1000, 1000, 9000],
    [4, 0, 1000, 4000],
  ])('mult %i, n %i, interval %i ms → %i ms', (mult, n, interval, expected) => {
    expect(suspicionTimeoutMs(mult, n, interval)).toBe(expected);
  });
});

describe('remainingSuspicionMs (memberlist suspicion_test TestSuspicion_remainingSuspicionTime)', () => {
  it.each([
    // confirmations, expected k, elapsed, min, max, remaining
    [0, 3, 0, 2000, 30000, 30000],
    [1, 3, 2000, 2000, 30000, 14000],
    [2, 3, 3000, 2000, 30000, 4810],
    [3, 3, 4000, 2000, 30000, -2000],
    [4, 3, 5000, 2000, 30000, -3000],
    [5, 3, 10000, 2000, 30000, -8000],
    [0, 0, 0, 2000, 30000, 2000],
  ])('C=%i k=%i elapsed %i → %i ms', (c, k, elapsed, min, max, expected) => {
    expect(remainingSuspicionMs(c, k, elapsed, min, max)).toBe(expected);
  });
});

describe('Suspicion', () => {
  it('starts at max and shrinks towards min with independent confirmations', () => {
    const s = new Suspicion('a', 3, 2000, 30000, 1000);
    expect(s.deadlineMs).toBe(31000);
    expect(s.confirm('a')).toBe(false); // the accuser itself is not a confirmation
    expect(s.confirm('b')).toBe(true);
    expect(s.deadlineMs).toBe(1000 + 16000);
    expect(s.confirm('b')).toBe(false); // duplicates do not count
    expect(s.confirm('c')).toBe(true);
    expect(s.confirm('d')).toBe(true);
    expect(s.deadlineMs).toBe(1000 + 2000);
    expect(s.confirm('e')).toBe(false); // beyond k: nothing more to learn
    expect(s.confirmations).toBe(3);
  });

  it('with k = 0 it times out at min', () => {
    const s = new Suspicion('a', 0, 2000, 30000, 0);
    expect(s.deadlineMs).toBe(2000);
    expect(s.confirm('b')).toBe(false);
  });
});
