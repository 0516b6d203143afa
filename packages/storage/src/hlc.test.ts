import { describe, expect, it } from 'vitest';
import { HybridClock } from './hlc.ts';
import { COUNTER_MAX, compareVersions } from './version.ts';

function clockAt(wall: { ms: number }, start = { ms: 0, counter: 0 }, driftMs = 1000): HybridClock {
  return new HybridClock('me', () => wall.ms, start, driftMs);
}

describe('HybridClock', () => {
  it('follows the wall clock while it moves forward', () => {
    const wall = { ms: 1000 };
    const c = clockAt(wall);
    expect(c.now()).toEqual({ ms: 1000, counter: 0, node: 'me' });
    expect(c.now()).toEqual({ ms: 1000, counter: 1, node: 'me' });
    wall.ms = 1005;
    expect(c.now()).toEqual({ ms: 1005, counter: 0, node: 'me' });
  });

  it('never goes backwards when the wall clock does', () => {
    const wall = { ms: 1000 };
    const c = clockAt(wall);
    const a = c.now();
    wall.ms = 10;
    const b = c.now();
    expect(b).toEqual({ ms: 1000, counter: 1, node: 'me' });
    expect(compareVersions(a, b)).toBe(-1);
  });

  it('carries into the next ms when the counter is exhausted', () => {
    const c = clockAt({ ms: 5 }, { ms: 5, counter: COUNTER_MAX - 1 });
    expect(c.now()).toEqual({ ms: 5, counter: COUNTER_MAX, node: 'me' });
    expect(c.now()).toEqual({ ms: 6, counter: 0, node: 'me' });
  });

  it('starts above a persisted high-water mark', () => {
    const c = clockAt({ ms: 100 }, { ms: 500, counter: COUNTER_MAX });
    expect(c.now()).toEqual({ ms: 501, counter: 0, node: 'me' });
  });

  it('observes remote versions within the max offset, and refuses (unmoved) one further ahead', () => {
    const wall = { ms: 1000 };
    const c = clockAt(wall);
    expect(c.observe({ ms: 1500, counter: 3, node: 'other' })).toBe(true);
    expect(c.now()).toEqual({ ms: 1500, counter: 4, node: 'me' });
    expect(c.observe({ ms: 2000, counter: 0, node: 'edge' })).toBe(true);
    expect(c.lastMs).toBe(2000);
    expect(c.observe({ ms: 2001, counter: 0, node: 'skewed' })).toBe(false);
    expect(c.observe({ ms: 900_000, counter: 0, node: 'skewed' })).toBe(false);
    expect(c.lastMs).toBe(2000);
    expect(c.observe({ ms: 10, counter: 0, node: 'old' })).toBe(true);
    expect(c.lastMs).toBe(2000);
  });

  it.each([
    ['behind the wall clock', 900, 0],
    ['ahead by less than the max offset', 1999, 0],
    ['ahead by exactly the max offset', 2000, 0],
    ['ahead by more than the max offset', 2001, 1001],
  ])('stampAheadMs with a clock %s', (_name, startMs, expected) => {
    const c = clockAt({ ms: 1000 }, { ms: startMs, counter: 0 });
    expect(c.stampAheadMs()).toBe(expected);
    expect(c.readingMs()).toBe(Math.max(1000, startMs));
  });

  it('stamps just past a given version without moving the clock', () => {
    const c = clockAt({ ms: 10 });
    expect(c.after({ ms: 99, counter: 1, node: 'x' })).toEqual({ ms: 99, counter: 2, node: 'me' });
    expect(c.after({ ms: 99, counter: COUNTER_MAX, node: 'x' })).toEqual({ ms: 100, counter: 0, node: 'me' });
    expect(c.lastMs).toBe(0);
  });
});
