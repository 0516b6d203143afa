import { describe, expect, it } from 'vitest';
import { createRandom } from './random.ts';
import { Scheduler } from './scheduler.ts';

describe('Scheduler', () => {
  it('fires by time, then by scheduling order, and advances the clock', () => {
    const s = new Scheduler(100);
    const fired: string[] = [];
    s.schedule(300, () => fired.push('c'));
    s.schedule(200, () => fired.push('a'));
    s.schedule(200, () => fired.push('b'));
    s.schedule(50, (now) => fired.push(`past@${now}`)); // the past is clamped to now
    s.runUntil(250);
    expect(fired).toEqual(['past@100', 'a', 'b']);
    expect(s.now).toBe(250);
    s.runUntil(1000);
    expect(fired).toEqual(['past@100', 'a', 'b', 'c']);
    expect(s.now).toBe(1000);
    expect(s.pending).toBe(0);
  });

  it('keeps order for many random events (heap property)', () => {
    const s = new Scheduler();
    const r = createRandom(1);
    const seen: [number, number][] = [];
    for (let i = 0; i < 20_000; i++) {
      const at = r.int(1000);
      s.scheduleCall(at, (k: number, now) => seen.push([now, k]), i);
    }
    s.runUntil(1000);
    expect(seen).toHaveLength(20_000);
    for (let i = 1; i < seen.length; i++) {
      const [t0, k0] = seen[i - 1]!;
      const [t1, k1] = seen[i]!;
      expect(t1 > t0 || (t1 === t0 && k1 > k0)).toBe(true);
    }
  });

  it('events scheduled while running fire in order too; runUntilTrue stops when the condition holds', () => {
    const s = new Scheduler();
    let count = 0;
    const tick = (now: number): void => {
      count++;
      s.schedule(now + 10, tick);
    };
    s.schedule(0, tick);
    const at = s.runUntilTrue(() => count >= 5, 1000);
    expect(at).toBe(40);
    expect(s.runUntilTrue(() => false, 100)).toBeUndefined();
    expect(s.now).toBe(100);
  });
});
