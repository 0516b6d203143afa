/**
 * Conditional writes (`If-Match`, `If-None-Match`): checked against a quorum
 * read (at least; `all` reads all), then written. Not a linearizable
 * compare-and-set: two racing conditional writes can both pass, and
 * last-write-wins then keeps the higher version. A conditional write that
 * loses to a higher version a replica holds is stamped again only if the
 * precondition accepts that version (`allowsOver`), else it fails with 412.
 */
import { ServiceError, type Consistency } from '@hearsay/service';
import { compareVersions, type StoredRecord, type Version } from '@hearsay/storage';
import type { CoordinatorContext } from './coordinator-context.ts';

/** Reads a key at a consistency level, as the coordinator does (the single-replica path included). */
export type ReadKey = (key: string, consistency: Consistency) => Promise<StoredRecord | undefined>;

export async function checkPreconditions(
  ctx: CoordinatorContext,
  read: ReadKey,
  key: string,
  consistency: Consistency,
  ifMatch: Version | '*' | undefined,
  ifNoneMatch: '*' | undefined,
): Promise<void> {
  if (ifMatch === undefined && ifNoneMatch === undefined) return;
  const current = await read(key, consistency === 'all' ? 'all' : 'quorum');
  const live = ctx.isLive(current) ? current : undefined;
  let ok = true;
  if (ifNoneMatch === '*' && live !== undefined) ok = false;
  if (ifMatch === '*' && live === undefined) ok = false;
  if (ifMatch !== undefined && ifMatch !== '*' && (live === undefined || compareVersions(live.version, ifMatch) !== 0)) ok = false;
  if (!ok) {
    ctx.counters.preconditionFailures++;
    throw new ServiceError('PRECONDITION_FAILED', 'the precondition did not hold on a quorum of replicas');
  }
}

/** What a conditional write checked before it was stamped; decides whether it may be stamped again past a version it lost to. */
export interface Precondition {
  readonly ifMatch: Version | '*' | undefined;
  readonly ifNoneMatch: '*' | undefined;
}

export const NO_PRECONDITION: Precondition = { ifMatch: undefined, ifNoneMatch: undefined };

export function preconditionOf(ifMatch: Version | '*' | undefined, ifNoneMatch: '*' | undefined): Precondition {
  return ifMatch === undefined && ifNoneMatch === undefined ? NO_PRECONDITION : { ifMatch, ifNoneMatch };
}

/**
 * Whether a write may be stamped again past a record it lost to (a replica
 * held a higher version, replica-write.ts): always without a precondition;
 * with one, only if that record is one the precondition accepts
 * (`If-Match: V` the very version V, `If-Match: *` a live record,
 * `If-None-Match: *` a tombstone). Else the precondition no longer holds (412).
 */
export function allowsOver(p: Precondition, tombstone: boolean, held: Version): boolean {
  if (p.ifNoneMatch === '*' && !tombstone) return false;
  if (p.ifMatch === '*' && tombstone) return false;
  if (p.ifMatch !== undefined && p.ifMatch !== '*' && (tombstone || compareVersions(p.ifMatch, held) !== 0)) return false;
  return true;
}
