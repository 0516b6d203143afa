import { COUNTER_MAX, versionAfter } from './version.ts';
import type { Version } from './types.ts';

/**
 * Hybrid logical clock (Kulkarni et al.): stamps are `(ms, counter, node)`
 * with `ms` the wall clock when it moves forward, else the last `ms` with the
 * counter bumped. The clock's state never goes backwards, whatever the wall
 * clock does.
 *
 * Persistence (done by the store, see clock-reservation.ts): the store keeps a
 * high-water mark `reservedMs` on disk that is always ahead of every stamp
 * handed out. At open the clock starts at `(reservedMs, COUNTER_MAX)`, so the
 * first stamp after a restart is above anything the previous run issued.
 * When `needsReservation()` says so, the store writes a new mark
 * `lastMs + reserveWindowMs` (in the same batch as the write that carries the
 * stamp, or on its own), so the mark is written at most about every
 * `reserveWindowMs / 2` of clock progress, not on every stamp.
 *
 * The maximum offset (`maxOffsetMs`): clocks of a cluster are assumed to be
 * within that of each other, so no honest version is more than that ahead
 * of this node's wall clock. `observe` refuses such a version (the clock does
 * not move), and the store refuses to keep one (clock-bound.ts). The same
 * bound holds for this clock's own stamps: while the clock runs more than
 * `maxOffsetMs` ahead of the wall clock (the wall clock went back, or the
 * store opened on a high-water mark from a clock that was ahead),
 * `stampAheadMs()` says so and the store stamps nothing.
 */
export class HybridClock {
  readonly nodeId: string;
  readonly maxOffsetMs: number;
  readonly #wallNowMs: () => number;
  #ms: number;
  #counter: number;

  constructor(nodeId: string, wallNowMs: () => number, start: { ms: number; counter: number }, maxOffsetMs: number) {
    this.nodeId = nodeId;
    this.#wallNowMs = wallNowMs;
    this.#ms = start.ms;
    this.#counter = start.counter;
    this.maxOffsetMs = maxOffsetMs;
  }

  /** The wall clock in whole ms (never negative). */
  wallMs(): number {
    const w = Math.floor(this.#wallNowMs());
    return Number.isFinite(w) && w > 0 ? w : 0;
  }

  /** A fresh stamp, strictly above every stamp this clock issued or observed. Does not check the bound (see `stampAheadMs`). */
  now(): Version {
    const wall = this.wallMs();
    if (wall > this.#ms) {
      this.#ms = wall;
      this.#counter = 0;
    } else if (this.#counter < COUNTER_MAX) {
      this.#counter++;
    } else {
      this.#ms++;
      this.#counter = 0;
    }
    return { ms: this.#ms, counter: this.#counter, node: this.nodeId };
  }

  /** The smallest stamp of this node strictly above `v` (does not move the clock). */
  after(v: Version): Version {
    return versionAfter(v, this.nodeId);
  }

  /** How far `ms` is ahead of the wall clock (negative: behind it). Past `maxOffsetMs` it is out of bounds. */
  aheadMs(ms: number): number {
    return ms - this.wallMs();
  }

  /**
   * How far the next stamp would be ahead of the wall clock when that is more
   * than `maxOffsetMs`; 0 while stamps are within the bound.
   */
  stampAheadMs(): number {
    const ahead = this.aheadMs(this.#ms);
    return ahead > this.maxOffsetMs ? ahead : 0;
  }

  /**
   * Moves the clock up to `v`, so later stamps sort after it. Returns false,
   * and leaves the clock alone, when `v` is more than `maxOffsetMs` ahead of
   * the wall clock: one node with a clock far in the future must not drag
   * every node's clock (and every later write) there.
   */
  observe(v: Version): boolean {
    // At or below the clock (every read of a record this node wrote): nothing to move, no wall-clock read.
    if (v.ms < this.#ms || (v.ms === this.#ms && v.counter <= this.#counter)) return true;
    if (this.aheadMs(v.ms) > this.maxOffsetMs) return false;
    this.#ms = v.ms;
    this.#counter = v.counter;
    return true;
  }

  /** The ms of the last stamp issued or observed. */
  get lastMs(): number {
    return this.#ms;
  }

  /** The clock's reading without issuing a stamp: the later of the wall clock and the last stamp issued or observed. */
  readingMs(): number {
    return Math.max(this.wallMs(), this.#ms);
  }
}
