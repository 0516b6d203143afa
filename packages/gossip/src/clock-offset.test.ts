import { describe, expect, it } from 'vitest';
import { clockSample, ClockWindow, errorAt } from './clock-offset.ts';

describe('clockSample: NTP-style offset from one round trip', () => {
  it.each([
    // t0 (ours, sent), t1 (theirs), t2 (ours, received) → offset, error (half the RTT + 1 ms of reading resolution)
    [1000, 1005, 1010, 0, 6],
    [1000, 1805, 1010, 800, 6],
    [1000, 205, 1010, -800, 6],
    [1000, 1000, 1000, 0, 1],
    [1000, 3600_000 + 1050, 1100, 3600_000, 51],
  ])('t0 %d, t1 %d, t2 %d: offset %d ± %d', (t0, t1, t2, offset, error) => {
    expect(clockSample(t0, t1, t2, 7)).toEqual({ offsetMs: offset, errorMs: error, atMs: 7 });
  });

  it('refuses a round trip that went backwards (our clock stepped back)', () => {
    expect(clockSample(1000, 1000, 999, 0)).toBeUndefined();
  });

  it('bounds the true offset whenever the target read its clock inside the round trip', () => {
    for (const readAt of [0, 0.25, 0.5, 0.75, 1]) {
      const t0 = 5000;
      const t2 = 5040;
      const trueOffset = 123.4;
      const t1 = t0 + readAt * (t2 - t0) + trueOffset;
      const s = clockSample(t0, t1, t2, 0)!;
      expect(Math.abs(s.offsetMs - trueOffset)).toBeLessThanOrEqual(s.errorMs);
    }
  });
});

describe('ClockWindow', () => {
  it('estimates from the sample with the smallest bound: the lowest round trip', () => {
    const w = new ClockWindow(8, 100);
    w.add({ offsetMs: 830, errorMs: 40, atMs: 0 });
    w.add({ offsetMs: 801, errorMs: 2, atMs: 10 });
    w.add({ offsetMs: 790, errorMs: 15, atMs: 20 });
    expect(w.estimate(20)).toEqual({ offsetMs: 801, errorMs: 2 + 10 * 100e-6, measuredAtMs: 10 });
  });

  it('widens an aging sample by the drift bound, so a fresher one wins in time', () => {
    const w = new ClockWindow(8, 100);
    w.add({ offsetMs: 800, errorMs: 1, atMs: 0 });
    w.add({ offsetMs: 802, errorMs: 3, atMs: 100_000 });
    // At 100 s the old sample's bound is 1 + 10 = 11 ms against 3 ms.
    expect(w.estimate(100_000)).toEqual({ offsetMs: 802, errorMs: 3, measuredAtMs: 100_000 });
    expect(errorAt({ offsetMs: 0, errorMs: 1, atMs: 0 }, 100_000, 100)).toBeCloseTo(11);
  });

  it('retires samples a new one contradicts (a clock step), and keeps at most `max`', () => {
    const w = new ClockWindow(3, 100);
    w.add({ offsetMs: 0, errorMs: 1, atMs: 0 });
    w.add({ offsetMs: 1, errorMs: 1, atMs: 1000 });
    expect(w.add({ offsetMs: 3600_000, errorMs: 5, atMs: 2000 })).toBe(2);
    expect(w.size).toBe(1);
    expect(w.estimate(2000)).toMatchObject({ offsetMs: 3600_000 });
    for (let i = 0; i < 5; i++) w.add({ offsetMs: 3600_000, errorMs: 5, atMs: 3000 + i });
    expect(w.size).toBe(3);
  });

  it('has no estimate without samples', () => {
    expect(new ClockWindow(8, 100).estimate(0)).toBeUndefined();
  });
});
