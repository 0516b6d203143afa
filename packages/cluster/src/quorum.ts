import type { Consistency } from '@hearsay/service';
import type { Clock } from '@hearsay/clock';

/** Replicas that must answer for a consistency level: one = 1, quorum = ⌊RF/2⌋ + 1, all = RF. */
export function requiredReplicas(consistency: Consistency, replicationFactor: number): number {
  switch (consistency) {
    case 'one':
      return Math.min(1, replicationFactor);
    case 'quorum':
      return Math.floor(replicationFactor / 2) + 1;
    case 'all':
      return replicationFactor;
    default: {
      const never: never = consistency;
      throw new TypeError(`unknown consistency ${String(never)}`);
    }
  }
}

export interface AckOutcome<T> {
  /** Answers in arrival order, with the index of the attempt that gave each. */
  readonly answers: readonly { readonly index: number; readonly value: T }[];
  readonly failed: number;
  /** True when the deadline passed before enough answers and before every attempt settled. */
  readonly timedOut: boolean;
}

/**
 * Waits until `need` attempts succeed, or every attempt settled, or
 * `timeoutMs` of `clock` time passed — whichever comes first. Never
 * rejects. Attempts still running go on in the background.
 */
export function awaitAnswers<T>(
  attempts: readonly Promise<T>[],
  need: number,
  clock: Clock,
  timeoutMs: number,
): Promise<AckOutcome<T>> {
  return new Promise((resolve) => {
    const answers: { index: number; value: T }[] = [];
    let failed = 0;
    let done = false;
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      cancelTimer();
      resolve({ answers: [...answers], failed, timedOut });
    };
    // Once `need` cannot be reached any more, the caller fails; it still waits
    // for the attempts in flight (up to the deadline) so it can say how many
    // acknowledged.
    const check = (): void => {
      if (answers.length >= need || answers.length + failed === attempts.length) finish(false);
    };
    const cancelTimer = clock.setTimer(() => finish(true), timeoutMs);
    attempts.forEach((p, index) => {
      p.then(
        (value) => {
          if (done) return;
          answers.push({ index, value });
          check();
        },
        () => {
          if (done) return;
          failed++;
          check();
        },
      );
    });
    check();
  });
}

/** Resolves when every attempt settled or the deadline passed, with the values that arrived by then. */
export function settleWithin<T>(
  attempts: readonly Promise<T>[],
  clock: Clock,
  timeoutMs: number,
): Promise<AckOutcome<T>> {
  return awaitAnswers(attempts, attempts.length, clock, timeoutMs);
}
