/**
 * Time as an input. Everything in Hearsay that reads the time or waits takes
 * a `Clock` (the gossip runtime, the cluster's background loops and replica
 * deadlines, repair sessions' rate limit, the store's hybrid logical clock),
 * so production passes the real clock and a simulation passes virtual time.
 */
export interface Clock {
  /** Current time in epoch milliseconds (virtual in a simulation). */
  now(): number;
  /**
   * Calls `callback` once after `delayMs` (a negative delay counts as 0);
   * returns a function that cancels the call if it has not happened yet
   * (calling it again, or after the call, does nothing).
   */
  setTimer(callback: () => void, delayMs: number): () => void;
}

/** setTimeout's largest delay; longer ones would fire at once. */
export const TIMER_DELAY_MS_MAX = 2 ** 31 - 1;

function clampDelay(delayMs: number): number {
  return Math.min(Math.max(0, delayMs), TIMER_DELAY_MS_MAX);
}

/** `Date.now` and `setTimeout`; a pending timer keeps the process alive, as setTimeout's does. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const handle = setTimeout(callback, clampDelay(delayMs));
    return () => clearTimeout(handle);
  },
};

/**
 * As `realClock`, but a pending timer does not keep the process alive
 * (`unref`): for background loops, which must never be the reason a process
 * stays up.
 */
export const backgroundClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const handle = setTimeout(callback, clampDelay(delayMs));
    handle.unref();
    return () => clearTimeout(handle);
  },
};

/** Resolves after `ms` of `clock` time, or rejects with the signal's reason when it aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
