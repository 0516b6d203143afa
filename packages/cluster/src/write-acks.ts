import type { Clock } from '@hearsay/clock';
import type { Version } from '@hearsay/storage';
import type { MemberAttempt, QuorumSet } from './joint-quorum.ts';
import type { ReplicaOutcome } from './peer.ts';

/**
 * Waiting for the replicas of one write, when a replica may answer that its
 * write lost. A replica that already holds a higher version than the one the
 * coordinator stamped (possible within the maximum clock offset: the writer
 * of that version had a clock ahead of ours) keeps its record, and says so.
 * Acknowledging then would be a 204 for a write that changed nothing there —
 * and, after repair, nowhere. So a `held` answer ends the wait at once and
 * the coordinator stamps again past it (replica-write.ts).
 *
 * Why this keeps the promise "an acknowledged write is never silently
 * overwritten by a write that happened before it in real time": a write W1
 * acknowledged by W1 replicas holds its version on each of them; a later
 * write W2 waits for W2 answers, and when W1 + W2 > RF (quorum and quorum,
 * or either at `all`) at least one of them comes from a replica that holds
 * W1 — so if W2 was stamped below W1, that replica answers `held` before W2
 * can be acknowledged.
 *
 * While a partition moves, the write waits for W of the old replica set and
 * W of the new one (docs/topology.md): a member in both counts for both.
 */
export type WriteWait =
  /** Every set has its count of replicas that have the record (`acked`: replicas that have it). */
  | { readonly kind: 'acked'; readonly acked: number }
  /** A replica holds a higher version (the first such answer): the write lost there. */
  | { readonly kind: 'lost'; readonly held: Version; readonly tombstone: boolean; readonly acked: number }
  /**
   * Too few replicas have it: every attempt settled, or the deadline passed
   * (`timedOut`). `acked`, `required` and `total` are those of the set
   * furthest from its count. `refused`: replicas that refused the version as
   * too far ahead of their clocks, with the largest lead.
   */
  | {
      readonly kind: 'short';
      readonly acked: number;
      readonly required: number;
      readonly total: number;
      readonly timedOut: boolean;
      readonly refused: number;
      readonly refusedAheadMs: number;
    };

/**
 * Waits until every set has `need` of its members answering that they have
 * the record, or one answered that it holds a higher version, or every
 * attempt settled, or `timeoutMs` of `clock` time passed. A member of a set
 * without an attempt (unreachable) counts as failed. Never rejects; attempts
 * still running go on in the background.
 */
export function awaitWriteAcks(
  attempts: readonly MemberAttempt<ReplicaOutcome>[],
  sets: readonly QuorumSet[],
  clock: Clock,
  timeoutMs: number,
): Promise<WriteWait> {
  return new Promise((resolve) => {
    const have = new Set<string>();
    let settled = 0;
    let refused = 0;
    let refusedAheadMs = 0;
    let done = false;
    const satisfied = (): boolean => sets.every((s) => s.members.filter((m) => have.has(m)).length >= s.need);
    const short = (timedOut: boolean): WriteWait => {
      let worst = { acked: 0, required: 0, total: 0, deficit: -Infinity };
      for (const s of sets) {
        const acked = s.members.filter((m) => have.has(m)).length;
        if (s.need - acked > worst.deficit) worst = { acked, required: s.need, total: s.members.length, deficit: s.need - acked };
      }
      return { kind: 'short', acked: worst.acked, required: worst.required, total: worst.total, timedOut, refused, refusedAheadMs };
    };
    const finish = (result: WriteWait): void => {
      if (done) return;
      done = true;
      cancelTimer();
      resolve(result);
    };
    const check = (): void => {
      if (satisfied()) finish({ kind: 'acked', acked: have.size });
      else if (settled === attempts.length) finish(short(false));
    };
    const cancelTimer = clock.setTimer(() => finish(short(true)), timeoutMs);
    for (const { member, promise } of attempts) {
      promise.then(
        (outcome) => {
          if (done) return;
          settled++;
          if (outcome === null) have.add(member);
          else if ('held' in outcome) {
            finish({ kind: 'lost', held: outcome.held, tombstone: outcome.tombstone, acked: have.size });
            return;
          } else {
            refused++;
            refusedAheadMs = Math.max(refusedAheadMs, outcome.aheadMs);
          }
          check();
        },
        () => {
          if (done) return;
          settled++;
          check();
        },
      );
    }
    check();
  });
}
