import type { LevelBatchOp } from './level.ts';
import { HLC_KEY, encodeMeta } from './meta.ts';

/**
 * The clock's persisted high-water mark (meta `hlc`), kept always ahead of
 * every stamp the store hands out, so a restarted store stamps above
 * everything its previous run issued (hlc.ts).
 *
 * Persisting the clock on every stamp would add a write to every batch for
 * nothing. Instead the mark is set `reserveMs` ahead of the clock and renewed
 * once the clock comes within half of that: in the batch that carries the
 * stamp (group preparation), or in a small batch of its own when the clock
 * moved without a write (`now()`, `observe`). So the mark is written about
 * twice per `reserveMs` of clock progress, and after a restart the clock may
 * run up to `reserveMs` ahead of the wall clock until the wall clock catches
 * up.
 */

/** The mark written when a store opens: past the old mark and the wall clock. */
export function openingReservation(storedMs: number, wallMs: number, reserveMs: number): number {
  return Math.max(storedMs, wallMs) + reserveMs;
}

/** Whether a clock at `clockMs` is near enough the mark `reservedMs` (the one that will be persisted) to renew it. */
export function needsReservation(clockMs: number, reservedMs: number, reserveMs: number): boolean {
  return clockMs + reserveMs / 2 > reservedMs;
}

/** The renewed mark: `reserveMs` past the clock, never below the old one. */
export function renewedReservation(clockMs: number, reservedMs: number, reserveMs: number): number {
  return Math.max(reservedMs, clockMs + reserveMs);
}

/** The batch op that persists a mark. */
export function reservationOp(reservedMs: number): LevelBatchOp {
  return { type: 'put', key: HLC_KEY, value: encodeMeta(reservedMs) };
}
