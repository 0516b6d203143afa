/**
 * The read of a key that has other replicas besides this node: sent to every
 * reachable replica of its partition's old and new sets, answered once each
 * set has R answers (one set when the partition does not move) with
 * the last-write-wins winner (storage's `newest`, the rule every store
 * merges by), and stale answers — late ones too — written back in the
 * background (read repair; a replica refuses a record more than its maximum
 * clock offset ahead of its clock, and that refusal is counted).
 */
import { insufficientReplicas, ServiceError, type Consistency } from '@hearsay/service';
import { compareRecords, newest, type StoredRecord } from '@hearsay/storage';
import { observe } from './clock-answers.ts';
import type { CoordinatorContext } from './coordinator-context.ts';
import { awaitJoint, quorumSets } from './joint-quorum.ts';
import type { ReplicaSets } from './placement.ts';
import { settleWithin } from './quorum.ts';
import type { ReplicaWriter } from './replica-write.ts';

export class ReplicaReader {
  readonly #ctx: CoordinatorContext;
  readonly #writer: ReplicaWriter;

  /** `writer` writes the winner back to stale replicas. */
  constructor(ctx: CoordinatorContext, writer: ReplicaWriter) {
    this.#ctx = ctx;
    this.#writer = writer;
  }

  async read(key: string, sets: ReplicaSets, consistency: Consistency): Promise<StoredRecord | undefined> {
    const ctx = this.#ctx;
    const targets = sets.all.filter((id) => ctx.reachable(id));
    const attempts = targets.map((id) => this.#readOn(id, key));
    const outcome = await awaitJoint(
      attempts.map((promise, i) => ({ member: targets[i]!, promise })),
      quorumSets(sets, consistency),
      ctx.clock,
      ctx.config.requestTimeoutMs,
    );
    if (!outcome.ok) {
      ctx.counters.readFailures++;
      if (outcome.timedOut) {
        throw new ServiceError('TIMEOUT', `${outcome.required} of ${outcome.total} replicas required, ${outcome.acknowledged} answered in time`, {
          acknowledged: outcome.acknowledged,
          required: outcome.required,
        });
      }
      throw insufficientReplicas(outcome.acknowledged, outcome.required, outcome.total);
    }
    const best = newest(outcome.answers.map((a) => a.value));
    // A version too far ahead is refused by the store (VERSION_AHEAD, counted there): the clock stays, the read answers it.
    if (best !== undefined) observe(ctx.store, best.version);
    if (ctx.config.readRepair) ctx.track(this.#readRepair(targets, attempts, best));
    return best;
  }

  async #readRepair(
    targets: readonly string[],
    attempts: readonly Promise<StoredRecord | undefined>[],
    seen: StoredRecord | undefined,
  ): Promise<void> {
    const ctx = this.#ctx;
    const all = await settleWithin(attempts, ctx.clock, ctx.config.requestTimeoutMs);
    const best = newest([seen, ...all.answers.map((a) => a.value)]);
    if (best === undefined) return;
    const stale = all.answers.filter((a) => a.value === undefined || compareRecords(a.value, best) < 0);
    await Promise.allSettled(
      stale.map(async (a) => {
        ctx.counters.readRepairs++;
        // A replica refusing the record (too far ahead of its clock) is counted by writeOn.
        await this.#writer.writeOn(targets[a.index]!, [best]);
      }),
    );
  }

  async #readOn(id: string, key: string): Promise<StoredRecord | undefined> {
    const ctx = this.#ctx;
    if (id === ctx.selfId) return ctx.store.getRecord(key);
    const [r] = await ctx.peer(id).read([key]);
    return r;
  }
}
