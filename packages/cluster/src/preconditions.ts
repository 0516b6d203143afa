/**
 * Conditional writes (`If-Match`, `If-None-Match`): checked against a quorum
 * read (at least; `all` reads all), then written. Not a linearizable
 * compare-and-set: two racing conditional writes can both pass, and
 * last-write-wins then keeps the higher version.
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
