/**
 * The tombstone purge rule.
 *
 * A tombstone may be dropped only when no replica can bring the deleted value
 * back. The replica that repairs a partition purges (on every replica of it)
 * only after a repair round in which:
 *
 * 1. It completed a session with EVERY other replica of the partition (the
 *    current preference list), and then — if a later session brought it
 *    records — repeated the sessions with the replicas it met before that
 *    one. A session leaves both sides holding every record either held when
 *    it began, so after the round every replica holds everything any replica
 *    held when the round began: a tombstone one replica had, all have (or
 *    something newer). Pairwise cut-offs from different rounds do NOT
 *    compose: A in sync with B at t1 and with C at t2 says nothing about
 *    whether B has what C gave A at t2 (the simulation found exactly this).
 * 2. The tombstone is older than the grace period. This covers what a round
 *    cannot see: writes in flight and hints still on their way. The grace
 *    period must be at least the hint window, so any hint older than the
 *    tombstone has been delivered or dropped.
 *
 * The purge cut-off is therefore
 *   min(now - grace, start of the round, each session's "equal up to" point)
 * and nothing is purged after a round that missed a replica. A replica that
 * was away longer than the grace period must be wiped before it rejoins (as
 * with Cassandra's gc_grace_seconds); see docs/operations.md.
 */
export interface PurgeCutoffInput {
  readonly roundStartMs: number;
  /** The "equal up to" point of every session of the round. */
  readonly sessionCutoffsMs: readonly number[];
  readonly nowMs: number;
  readonly graceMs: number;
}

/** Tombstones with version ms strictly below the result may go; undefined: none may. */
export function purgeCutoffMs(input: PurgeCutoffInput): number | undefined {
  let cutoff = Math.min(input.nowMs - input.graceMs, input.roundStartMs);
  for (const c of input.sessionCutoffsMs) cutoff = Math.min(cutoff, c);
  cutoff = Math.floor(cutoff);
  return cutoff > 0 ? cutoff : undefined;
}
