import { StorageError } from './errors.ts';
import type { HybridClock } from './hlc.ts';
import type { Version } from './types.ts';
import { versionToString } from './version.ts';

/**
 * Bounded versions: no version more than the maximum clock offset ahead of
 * this store's wall clock enters the store or its clock, and none leaves it.
 *
 * Last-write-wins is only as good as the clocks behind it. One record
 * stamped by a clock an hour ahead would beat every write to its key for an
 * hour — PUT, DELETE and conditional writes would all "succeed" and change
 * nothing — and, observed, drag every clock that sees it an hour ahead. With
 * clocks kept within `maxOffsetMs` of each other (NTP), no honest version is
 * further ahead than that, so one that is says a clock is wrong:
 *
 * - a record to apply (replication, hints, read repair, repair sessions) or
 *   a version to observe that far ahead is refused (VERSION_AHEAD);
 * - a local write to a key that holds such a version (stored before this
 *   rule, or under another offset) is refused too: it would have to be
 *   stamped past it, just as far ahead;
 * - while this store's own clock runs more than `maxOffsetMs` ahead of its
 *   wall clock (the wall clock was set back, or the store was opened with
 *   `acceptClockAhead` on a high-water mark from a clock that was ahead), it
 *   stamps nothing (CLOCK_AHEAD) until the wall clock catches up.
 *
 * Each refusal is counted (`clockStatus()`). The same bound is what
 * CockroachDB calls `--max-offset`.
 */
export class ClockBound {
  readonly #clock: HybridClock;
  /** Records and observed versions refused for being too far ahead. */
  versionsRefused = 0;
  /** Local writes and `now()` calls refused while the clock ran too far ahead. */
  stampsRefused = 0;

  constructor(clock: HybridClock) {
    this.#clock = clock;
  }

  get maxOffsetMs(): number {
    return this.#clock.maxOffsetMs;
  }

  /** How far `version` is ahead of the wall clock (negative: behind). */
  aheadMs(version: Version): number {
    return this.#clock.aheadMs(version.ms);
  }

  /** VERSION_AHEAD for a version past the bound (counted); undefined when it is within. */
  checkVersion(version: Version, what: string): StorageError | undefined {
    const ahead = this.aheadMs(version);
    if (ahead <= this.maxOffsetMs) return undefined;
    this.versionsRefused++;
    return versionAhead(version, ahead, this.maxOffsetMs, what);
  }

  /** CLOCK_AHEAD while the clock's next stamp would be past the bound (counted); undefined when stamps are within it. */
  checkStamp(): StorageError | undefined {
    const ahead = this.#clock.stampAheadMs();
    if (ahead === 0) return undefined;
    this.stampsRefused++;
    return clockAhead(ahead, this.maxOffsetMs, this.#clock.lastMs - this.maxOffsetMs);
  }
}

export function versionAhead(version: Version, aheadMs: number, maxOffsetMs: number, what: string): StorageError {
  return new StorageError(
    'VERSION_AHEAD',
    `${what} has version ${versionToString(version)}, ${describeMs(aheadMs)} ahead of this node's clock (the maximum clock offset is ${maxOffsetMs} ms): the clock that stamped it is wrong, or this one is`,
    { details: { aheadMs, maxOffsetMs } },
  );
}

export function clockAhead(aheadMs: number, maxOffsetMs: number, untilMs: number): StorageError {
  return new StorageError(
    'CLOCK_AHEAD',
    `this node's clock is ${describeMs(aheadMs)} ahead of its wall clock (the maximum clock offset is ${maxOffsetMs} ms): it stamps no version until ${new Date(untilMs).toISOString()}, when the wall clock is back within the offset`,
    { details: { aheadMs, maxOffsetMs, untilMs } },
  );
}

/** The store's persisted high-water mark is too far ahead of the wall clock to be trusted at open. */
export function markAhead(markMs: number, wallMs: number, maxOffsetMs: number): StorageError {
  const aheadMs = markMs - wallMs;
  const untilMs = markMs - maxOffsetMs;
  return new StorageError(
    'CLOCK_AHEAD',
    `the clock high-water mark persisted in this store is ${describeMs(aheadMs)} ahead of the wall clock ` +
      `(mark ${new Date(markMs).toISOString()}, wall clock ${new Date(wallMs).toISOString()}, maximum clock offset ${maxOffsetMs} ms): ` +
      'this machine\'s clock was set back, or it ran ahead when the store last ran. Versions stamped now could sort below versions ' +
      `this store already issued, and versions stamped from the mark would beat later writes of every other node. Check the clock (NTP), ` +
      `then either wait until ${new Date(untilMs).toISOString()}, or accept the mark (acceptClockAhead): the store then opens but stamps ` +
      'no version until that time',
    { details: { aheadMs, maxOffsetMs, untilMs } },
  );
}

/** `ms` for people: "850 ms", "12.3 s", "61.0 min", "1.00 h", "2.0 d". */
export function describeMs(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 10_000) return `${Math.round(ms)} ms`;
  if (abs < 600_000) return `${(ms / 1000).toFixed(1)} s`;
  if (abs < 3 * 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (abs < 2 * 86_400_000) return `${(ms / 3_600_000).toFixed(2)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}
