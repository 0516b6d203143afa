// Virtual clock and event scheduler. Events fire in order of time, then of
// scheduling (a sequence number), so a run is a pure function of its inputs.
// A binary heap keeps schedule and fire at O(log n) for millions of events;
// `scheduleCall` passes an argument instead of a closure to avoid allocating
// one per message.

export type EventCallback<A> = (arg: A, nowMs: number) => void;

interface Event {
  atMs: number;
  seq: number;
  fn: EventCallback<unknown>;
  arg: unknown;
}

export class Scheduler {
  private heap: Event[] = [];
  private seq = 0;
  private nowValue: number;
  /** Events fired so far. */
  fired = 0;

  constructor(startMs = 0) {
    this.nowValue = startMs;
  }

  /** Current virtual time in ms. */
  get now(): number {
    return this.nowValue;
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Time of the next event, or undefined when none is pending. */
  peekTime(): number | undefined {
    return this.heap[0]?.atMs;
  }

  /** Run `fn(arg, now)` at `atMs` (clamped to now: the past is gone). */
  scheduleCall<A>(atMs: number, fn: EventCallback<A>, arg: A): void {
    const e: Event = { atMs: atMs < this.nowValue ? this.nowValue : atMs, seq: this.seq++, fn: fn as EventCallback<unknown>, arg };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (p.atMs < e.atMs || (p.atMs === e.atMs && p.seq < e.seq)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = e;
  }

  /** Run `fn(now)` at `atMs`. */
  schedule(atMs: number, fn: (nowMs: number) => void): void {
    this.scheduleCall(atMs, callThunk, fn);
  }

  /** Run `fn(now)` after `delayMs`. */
  after(delayMs: number, fn: (nowMs: number) => void): void {
    this.scheduleCall(this.nowValue + delayMs, callThunk, fn);
  }

  /** Fire the next event. Returns false when none is pending. */
  step(): boolean {
    const e = this.pop();
    if (e === undefined) return false;
    this.nowValue = e.atMs;
    this.fired++;
    e.fn(e.arg, e.atMs);
    return true;
  }

  /** Fire every event up to and including `untilMs`, then set the clock to `untilMs`. */
  runUntil(untilMs: number): void {
    const h = this.heap;
    while (h.length > 0 && h[0]!.atMs <= untilMs) this.step();
    if (untilMs > this.nowValue) this.nowValue = untilMs;
  }

  runFor(durationMs: number): void {
    this.runUntil(this.nowValue + durationMs);
  }

  /**
   * Fire events until `done()` holds (checked after each event whose time
   * passed `checkEveryMs` since the last check) or `untilMs` is reached.
   * Returns the time at which `done()` first held, or undefined.
   */
  runUntilTrue(done: () => boolean, untilMs: number, checkEveryMs = 0): number | undefined {
    if (done()) return this.nowValue;
    let lastCheck = this.nowValue;
    const h = this.heap;
    while (h.length > 0 && h[0]!.atMs <= untilMs) {
      this.step();
      if (this.nowValue - lastCheck >= checkEveryMs) {
        lastCheck = this.nowValue;
        if (done()) return this.nowValue;
      }
    }
    if (untilMs > this.nowValue) this.nowValue = untilMs;
    return done() ? this.nowValue : undefined;
  }

  private pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop()!;
    const n = h.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        let ce = h[l]!;
        if (r < n) {
          const re = h[r]!;
          if (re.atMs < ce.atMs || (re.atMs === ce.atMs && re.seq < ce.seq)) {
            c = r;
            ce = re;
          }
        }
        if (last.atMs < ce.atMs || (last.atMs === ce.atMs && last.seq < ce.seq)) break;
        h[i] = ce;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function callThunk(fn: (nowMs: number) => void, nowMs: number): void {
  fn(nowMs);
}
