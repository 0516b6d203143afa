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
 * Remote clocks: `observe(v)` moves the clock to `v` so later local stamps
 * sort after it, but never further than `wall + maxForwardDriftMs`: one node
 * with a clock far in the future must not drag every node's clock there.
 * Local writes to a key whose stored version is above the clock are stamped
 * just past that version instead (see `after`), so they still win.
 */
export class HybridClock {
  readonly nodeId: string;
  readonly #wallNowMs: () => number;
  readonly #maxForwardDriftMs: number;
  #ms: number;
  #counter: number;

  constructor(nodeId: string, wallNowMs: () => number, start: { ms: number; counter: number }, maxForwardDriftMs: number) {
    this.nodeId = nodeId;
    this.#wallNowMs = wallNowMs;
    this.#ms = start.ms;
    this.#counter = start.counter;
    this.#maxForwardDriftMs = maxForwardDriftMs;
  }

  /** The wall clock in whole ms (never negative). */
  wallMs(): number {
    const w = Math.floor(this.#wallNowMs());
    return Number.isFinite(w) && w > 0 ? w : 0;
  }

  /** A fresh stamp, strictly above every stamp this clock issued or observed. */
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

  /** Moves the clock up to `v` (bounded by wall + maxForwardDriftMs). Returns false when it had to clamp. */
  observe(v: Version): boolean {
    // At or below the clock (every read of a record this node wrote): nothing to move, no wall-clock read.
    if (v.ms < this.#ms || (v.ms === this.#ms && v.counter <= this.#counter)) return true;
    const limit = this.wallMs() + this.#maxForwardDriftMs;
    let ms = v.ms;
    let counter = v.counter;
    let clamped = false;
    if (ms > limit) {
      ms = limit;
      counter = 0;
      clamped = true;
    }
    if (ms > this.#ms || (ms === this.#ms && counter > this.#counter)) {
      this.#ms = ms;
      this.#counter = counter;
    }
    return !clamped;
  }

  /** The ms of the last stamp issued or observed. */
  get lastMs(): number {
    return this.#ms;
  }
}
