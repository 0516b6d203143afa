import type { Clock } from '@hearsay/clock';
import { describe, expect, it } from 'vitest';
import { StreamLimiter } from './transfer.ts';

/** A clock whose timers fire at once, advancing its time by their delay; it records each wait. */
function steppingClock(): Clock & { waits: number[] } {
  let now = 1_000_000;
  const waits: number[] = [];
  return {
    waits,
    now: () => now,
    setTimer(callback, delayMs) {
      waits.push(delayMs);
      now += delayMs;
      callback();
      return () => undefined;
    },
  };
}

describe('StreamLimiter (streamRateLimitBytesPerSec)', () => {
  it('lets a second of bytes through at once, then waits as long as the rate says', async () => {
    const clock = steppingClock();
    const limiter = new StreamLimiter(1000, clock);
    await limiter.take(1000);
    expect(clock.waits).toEqual([]);
    await limiter.take(500);
    expect(clock.waits).toEqual([500]);
    await limiter.take(2000);
    expect(clock.waits).toEqual([500, 2000]);
    // 3,500 bytes at 1,000 B/s with a 1,000-byte burst: 2.5 s of waiting in all.
    expect(clock.waits.reduce((a, b) => a + b, 0)).toBe(2500);
  });

  it('never waits when the limit is 0 (unlimited)', async () => {
    const clock = steppingClock();
    const limiter = new StreamLimiter(0, clock);
    for (let i = 0; i < 10; i++) await limiter.take(100 * 1024 * 1024);
    expect(clock.waits).toEqual([]);
  });

  it('stops waiting when its signal aborts', async () => {
    const clock: Clock = { now: () => 0, setTimer: () => () => undefined };
    const limiter = new StreamLimiter(10, clock);
    await limiter.take(10);
    const abort = new AbortController();
    const waiting = limiter.take(100, abort.signal);
    abort.abort(new Error('stopped'));
    await expect(waiting).rejects.toThrow('stopped');
  });
});
