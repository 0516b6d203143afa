import type { Clock } from '@hearsay/clock';
import type { Version } from '@hearsay/storage';
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
 */
export type WriteWait =
  /** `need` replicas have the record. */
  | { readonly kind: 'acked'; readonly acked: number }
  /** A replica holds a higher version (the first such answer): the write lost there. */
  | { readonly kind: 'lost'; readonly held: Version; readonly tombstone: boolean; readonly acked: number }
  /**
   * Too few replicas have it: every attempt settled, or the deadline passed
   * (`timedOut`). `refused`: replicas that refused the version as too far
   * ahead of their clocks, with the largest lead.
   */
  | { readonly kind: 'short'; readonly acked: number; readonly timedOut: boolean; readonly refused: number; readonly refusedAheadMs: number };

/**
 * Waits until `need` attempts answered that the replica has the record, or
 * one answered that it holds a higher version, or every attempt settled, or
 * `timeoutMs` of `clock` time passed. Never rejects; attempts still running
 * go on in the background.
 */
export function awaitWriteAcks(attempts: readonly Promise<ReplicaOutcome>[], need: number, clock: Clock, timeoutMs: number): Promise<WriteWait> {
  return new Promise((resolve) => {
    let acked = 0;
    let settled = 0;
    let refused = 0;
    let refusedAheadMs = 0;
    let done = false;
    const finish = (result: WriteWait): void => {
      if (done) return;
      done = true;
      cancelTimer();
      resolve(result);
    };
    const check = (): void => {
      if (acked >= need) finish({ kind: 'acked', acked });
      else if (settled === attempts.length) finish({ kind: 'short', acked, timedOut: false, refused, refusedAheadMs });
    };
    const cancelTimer = clock.setTimer(() => finish({ kind: 'short', acked, timedOut: true, refused, refusedAheadMs }), timeoutMs);
    for (const attempt of attempts) {
      attempt.then(
        (outcome) => {
          if (done) return;
          settled++;
          if (outcome === null) acked++;
          else if ('held' in outcome) {
            finish({ kind: 'lost', held: outcome.held, tombstone: outcome.tombstone, acked });
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
