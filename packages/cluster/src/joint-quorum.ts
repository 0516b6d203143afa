import type { Clock } from '@hearsay/clock';
import type { Consistency } from '@hearsay/service';
import type { ReplicaSets } from './placement.ts';
import { requiredReplicas } from './quorum.ts';

/** One replica set of a request and how many of its members must answer. */
export interface QuorumSet {
  readonly members: readonly string[];
  readonly need: number;
}

/** One request to one member. */
export interface MemberAttempt<T> {
  readonly member: string;
  readonly promise: Promise<T>;
}

export interface JointOutcome<T> {
  /** Answers in arrival order, with the index of the attempt that gave each. */
  readonly answers: readonly { readonly index: number; readonly member: string; readonly value: T }[];
  /** True when every set got its count. */
  readonly ok: boolean;
  /** True when the deadline passed before that and before every attempt settled. */
  readonly timedOut: boolean;
  /** For the 503 details: the answers and the count of the set furthest from its count. */
  readonly acknowledged: number;
  readonly required: number;
  /** That set's size. */
  readonly total: number;
}

/**
 * Waits until every set has `need` answers from its own members (a member in
 * two sets counts for both), or every attempt settled, or `timeoutMs` of
 * `clock` time passed — whichever comes first. Never rejects. A member of a
 * set without an attempt (unreachable) counts as failed. With one set this
 * is `awaitAnswers` of quorum.ts; during a membership change the coordinator
 * passes the old and the new replica sets (docs/topology.md).
 */
export function awaitJoint<T>(
  attempts: readonly MemberAttempt<T>[],
  sets: readonly QuorumSet[],
  clock: Clock,
  timeoutMs: number,
): Promise<JointOutcome<T>> {
  return new Promise((resolve) => {
    const answers: { index: number; member: string; value: T }[] = [];
    const answered = new Set<string>();
    let settled = 0;
    let done = false;
    const worst = (): { acknowledged: number; required: number; total: number } => {
      let pick = { acknowledged: 0, required: 0, total: 0, deficit: -Infinity };
      for (const s of sets) {
        const have = s.members.filter((m) => answered.has(m)).length;
        const deficit = s.need - have;
        if (deficit > pick.deficit) pick = { acknowledged: have, required: s.need, total: s.members.length, deficit };
      }
      return { acknowledged: pick.acknowledged, required: pick.required, total: pick.total };
    };
    const satisfied = (): boolean => sets.every((s) => s.members.filter((m) => answered.has(m)).length >= s.need);
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      cancelTimer();
      resolve({ answers: [...answers], ok: satisfied(), timedOut: timedOut && !satisfied(), ...worst() });
    };
    const check = (): void => {
      if (satisfied() || settled === attempts.length) finish(false);
    };
    const cancelTimer = clock.setTimer(() => finish(true), timeoutMs);
    attempts.forEach((a, index) => {
      a.promise.then(
        (value) => {
          if (done) return;
          settled++;
          answers.push({ index, member: a.member, value });
          answered.add(a.member);
          check();
        },
        () => {
          if (done) return;
          settled++;
          check();
        },
      );
    });
    check();
  });
}

/** The consistency level's count of each replica set: the old set, and the new one while the partition moves. */
export function quorumSets(sets: ReplicaSets, consistency: Consistency): QuorumSet[] {
  const of = (members: readonly string[]): QuorumSet => ({ members, need: requiredReplicas(consistency, members.length) });
  return sets.moving ? [of(sets.old), of(sets.next)] : [of(sets.old)];
}
