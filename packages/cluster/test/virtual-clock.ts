import type { Clock } from '@hearsay/clock';

/**
 * Virtual time for unit tests. Storage on memory-level completes through
 * microtasks only, so "everything runnable has run" is one macrotask turn;
 * `runUntil` alternates that with firing the next timer, jumping the clock.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #queue: { at: number; seq: number; fn: () => void }[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, delayMs: number): () => void {
    const t = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#queue.push(t);
    return () => {
      const i = this.#queue.indexOf(t);
      if (i >= 0) this.#queue.splice(i, 1);
    };
  }

  /** Fires the earliest timer; false when there is none. */
  fireNext(): boolean {
    if (this.#queue.length === 0) return false;
    let best = 0;
    for (let i = 1; i < this.#queue.length; i++) {
      const a = this.#queue[i]!;
      const b = this.#queue[best]!;
      if (a.at < b.at || (a.at === b.at && a.seq < b.seq)) best = i;
    }
    const [t] = this.#queue.splice(best, 1);
    this.#now = Math.max(this.#now, t!.at);
    t!.fn();
    return true;
  }

  /** Runs until `p` settles, advancing virtual time only when nothing else can run. */
  async runUntil<T>(p: Promise<T>, maxTimers = 100_000): Promise<T> {
    let settled = false;
    const q = p.finally(() => {
      settled = true;
    });
    q.catch(() => undefined);
    for (let i = 0; ; i++) {
      await new Promise((r) => setImmediate(r));
      if (settled) return q;
      if (i > maxTimers) throw new Error('runUntil: too many timers');
      if (!this.fireNext()) {
        await new Promise((r) => setImmediate(r));
        if (settled) return q;
        throw new Error('runUntil: nothing left to run but the promise is pending');
      }
    }
  }

  /** Advances the clock by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const next = this.#queue.reduce<number>((m, t) => Math.min(m, t.at), Infinity);
      if (next > until) break;
      this.fireNext();
    }
    this.#now = until;
    await new Promise((r) => setImmediate(r));
  }
}
