import { describe, expect, it } from 'vitest';
import { backgroundClock, realClock, sleep, type Clock } from './clock.ts';

/** Virtual time: timers fire only when the test advances the clock. */
function manualClock(startMs = 1000): Clock & { advance(ms: number): void; pending(): number } {
  let now = startMs;
  let timers: { at: number; callback: () => void }[] = [];
  return {
    now: () => now,
    setTimer(callback, delayMs) {
      const timer = { at: now + Math.max(0, delayMs), callback };
      timers.push(timer);
      return () => {
        timers = timers.filter((t) => t !== timer);
      };
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) t.callback();
    },
    pending: () => timers.length,
  };
}

const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('sleep', () => {
  it('resolves once the clock has moved by the delay', async () => {
    const clock = manualClock();
    let done = false;
    const slept = sleep(clock, 50).then(() => {
      done = true;
    });
    clock.advance(49);
    await Promise.resolve();
    expect(done).toBe(false);
    clock.advance(1);
    await slept;
    expect(done).toBe(true);
  });

  it('rejects with the reason of a signal that aborts first, and cancels its timer', async () => {
    const clock = manualClock();
    const abort = new AbortController();
    const slept = sleep(clock, 50, abort.signal);
    expect(clock.pending()).toBe(1);
    abort.abort(new Error('stop'));
    await expect(slept).rejects.toThrow('stop');
    expect(clock.pending()).toBe(0);
  });

  it('rejects at once on a signal already aborted, without a timer', async () => {
    const clock = manualClock();
    await expect(sleep(clock, 50, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
    expect(clock.pending()).toBe(0);
  });
});

describe('the real clocks', () => {
  it('read the wall clock', () => {
    const before = Date.now();
    const read = [realClock.now(), backgroundClock.now()];
    for (const ms of read) expect(ms).toBeGreaterThanOrEqual(before);
  });

  it('cancel a timer before it fires', async () => {
    for (const clock of [realClock, backgroundClock]) {
      let fired = false;
      const cancel = clock.setTimer(() => {
        fired = true;
      }, 0);
      cancel();
      cancel(); // twice is harmless
      await sleep(clock, 5);
      expect(fired).toBe(false);
    }
  });

  it('fire a timer whose delay is negative or beyond setTimeout range without firing early', async () => {
    let fired = false;
    await new Promise<void>((resolve) => realClock.setTimer(resolve, -5));
    const cancel = realClock.setTimer(() => {
      fired = true;
    }, 2 ** 40);
    await sleep(realClock, 5);
    expect(fired).toBe(false); // an unclamped delay would fire at once
    cancel();
  });

  it('keep the process alive with a pending timer (realClock) or not (backgroundClock)', () => {
    const base = timeouts();
    const cancelReal = realClock.setTimer(() => undefined, 60_000);
    expect(timeouts()).toBe(base + 1);
    cancelReal();
    const cancelBackground = backgroundClock.setTimer(() => undefined, 60_000);
    expect(timeouts()).toBe(base);
    cancelBackground();
  });
});
