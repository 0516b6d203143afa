/**
 * How the coordinator's writes meet the clock: the fence is asked before a
 * write is stamped (clock-fence.ts), versions are stamped and observed
 * through the store's bounds (no version more than the maximum offset ahead
 * of its clock), and what the client sees when the clock says no — 503
 * `CLOCK_SKEW` with the offset (or `UNAVAILABLE` while not yet verified).
 * `clockView` is what `/v1/cluster` and `/v1/health` show of the verdict.
 */
import { ServiceError } from '@hearsay/service';
import { isStorageError, type Store, type Version } from '@hearsay/storage';
import type { ClockVerdict } from './clock-fence.ts';
import type { CoordinatorContext } from './coordinator-context.ts';

/**
 * Refuses a write while this node's clock is not known to be within the
 * maximum offset of the members it reaches: before it is stamped, so a node
 * outside the offset stamps nothing. Counted as a failed write.
 */
export function checkClock(ctx: CoordinatorContext): void {
  const fence = ctx.clockFence;
  if (fence === undefined) return;
  const verdict = fence.verdict();
  if (verdict.state === 'ok') return;
  fence.countRefusal(verdict.state);
  ctx.counters.writes++;
  ctx.counters.writeFailures++;
  throw clockRefusal(verdict);
}

/** A fresh version from the store's clock; 503 CLOCK_SKEW while the store stamps nothing (its clock runs too far ahead). */
export function stamp(store: Store): Version {
  try {
    return store.now();
  } catch (e) {
    if (isStorageError(e, 'CLOCK_AHEAD')) throw storeClockRefusal(e);
    throw e;
  }
}

/** Moves the store's clock up to a version seen elsewhere; false when the store refused (and counted) one too far ahead. */
export function observe(store: Store, version: Version): boolean {
  try {
    store.observe(version);
    return true;
  } catch (e) {
    if (isStorageError(e, 'VERSION_AHEAD')) return false;
    throw e;
  }
}

/** What `/v1/cluster` (on the node's own entry) and `/v1/health` show of the clock verdict. */
export function clockView(v: ClockVerdict): Record<string, string | number | boolean> {
  return {
    state: v.state,
    maxOffsetMs: v.maxOffsetMs,
    reachable: v.reachable,
    within: v.within,
    beyond: v.beyond,
    measuring: v.measuring,
    ...(v.offsetMs === undefined ? {} : { offsetMs: v.offsetMs }),
    ...(v.errorMs === undefined ? {} : { errorMs: v.errorMs }),
    ...(v.stampsResumeAtMs === undefined ? {} : { stampsResumeAtMs: v.stampsResumeAtMs }),
    ...(v.reason === undefined ? {} : { reason: v.reason }),
  };
}

/** The answer to a write the clock fence refuses: 503 CLOCK_SKEW (skewed, ahead) or UNAVAILABLE (not verified yet). */
export function clockRefusal(v: ClockVerdict): ServiceError {
  const details = {
    clockState: v.state,
    maxOffsetMs: v.maxOffsetMs,
    ...(v.offsetMs === undefined ? {} : { offsetMs: v.offsetMs }),
    ...(v.errorMs === undefined ? {} : { errorMs: v.errorMs }),
    ...(v.stampsResumeAtMs === undefined ? {} : { stampsResumeAtMs: v.stampsResumeAtMs }),
  };
  return new ServiceError(v.state === 'unverified' ? 'UNAVAILABLE' : 'CLOCK_SKEW', v.reason ?? `clock ${v.state}`, details);
}

type ClockErrorDetails = { message: string; details?: { aheadMs?: number; maxOffsetMs?: number; untilMs?: number } | undefined };

/** The store's CLOCK_AHEAD (it stamps nothing until its wall clock catches up) as the client sees it. */
export function storeClockRefusal(e: ClockErrorDetails): ServiceError {
  const d = e.details ?? {};
  return new ServiceError('CLOCK_SKEW', e.message, {
    clockState: 'ahead',
    ...(d.aheadMs === undefined ? {} : { offsetMs: d.aheadMs }),
    ...(d.maxOffsetMs === undefined ? {} : { maxOffsetMs: d.maxOffsetMs }),
    ...(d.untilMs === undefined ? {} : { stampsResumeAtMs: d.untilMs }),
  });
}

/** The store's VERSION_AHEAD on a local write: the key holds a version too far ahead to stamp past. */
export function versionRefusal(e: ClockErrorDetails): ServiceError {
  const d = e.details ?? {};
  return new ServiceError('CLOCK_SKEW', e.message, {
    ...(d.aheadMs === undefined ? {} : { offsetMs: d.aheadMs }),
    ...(d.maxOffsetMs === undefined ? {} : { maxOffsetMs: d.maxOffsetMs }),
  });
}
