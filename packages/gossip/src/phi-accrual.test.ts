import { describe, expect, it } from 'vitest';
import { ArrivalWindow } from './phi-accrual.ts';

describe('ArrivalWindow (phi accrual)', () => {
  it('is 0 before any arrival', () => {
    expect(new ArrivalWindow(10, 100).phi(5000)).toBe(0);
  });

  it.each([
    // silence after regular 1 s heartbeats → phi
    [0, 0],
    [1000, 0.434],
    [5000, 2.171],
    [10000, 4.343],
    [18000, 7.817],
    [18500, 8.034],
  ])('after %i ms of silence phi ≈ %f', (silenceMs, expected) => {
    const w = new ArrivalWindow(100, 100);
    for (let t = 0; t <= 10_000; t += 1000) w.add(t);
    expect(w.phi(10_000 + silenceMs)).toBeCloseTo(expected, 2);
  });

  it('crosses Cassandra’s threshold 8 at about 18.4 mean intervals', () => {
    const w = new ArrivalWindow(100, 100);
    for (let t = 0; t <= 20_000; t += 500) w.add(t);
    expect(w.phi(20_000 + 9000)).toBeLessThan(8);
    expect(w.phi(20_000 + 9300)).toBeGreaterThan(8);
  });

  it('keeps a sliding window and floors the mean', () => {
    const w = new ArrivalWindow(3, 200);
    w.add(0);
    w.add(10);
    w.add(20);
    expect(w.meanMs).toBe(200); // mean 10 floored to 200
    for (const t of [1020, 2020, 3020, 4020]) w.add(t);
    expect(w.meanMs).toBe(1000); // only the last three intervals count
  });
});
