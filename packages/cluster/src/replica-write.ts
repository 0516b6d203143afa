/**
 * The write of a key that has other replicas besides this node: the same
 * record to every replica of its partition's old and new sets in parallel
 * (applied locally when this node is one), acknowledged once each set has W
 * (one set when the partition does not move); a replica
 * that is down, or that the write fails on, gets the record as a hint — from
 * a stand-in beyond the preference list, or kept on this node. A write that
 * too few replicas have room for is refused with 503 BUSY before anything is
 * written (backpressure). A replica that already holds a higher version
 * says so, and the write is stamped again past it (or refused: 412, 409
 * CONFLICT, 503 CLOCK_SKEW) — never acknowledged while it changed nothing.
 */
import { insufficientReplicas, ServiceError, type Consistency } from '@hearsay/service';
import type { StoredRecord, Version } from '@hearsay/storage';
import { observe, stamp } from './clock-answers.ts';
import type { CoordinatorContext } from './coordinator-context.ts';
import { replicaOutcome } from './internode-handler.ts';
import type { ReplicaOutcome } from './peer.ts';
import { quorumSets, type MemberAttempt, type QuorumSet } from './joint-quorum.ts';
import type { Placement, ReplicaSets } from './placement.ts';
import { allowsOver, type Precondition } from './preconditions.ts';
import { awaitWriteAcks } from './write-acks.ts';

/** Times a write is stamped again past a version a replica holds, before it gives up (CONFLICT). */
export const MAX_RESTAMPS = 4;

export class ReplicaWriter {
  readonly #ctx: CoordinatorContext;

  constructor(ctx: CoordinatorContext) {
    this.#ctx = ctx;
  }

  /** A write to the replicas of a key that has others besides this node (counted as one write); resolves with the record acknowledged. */
  write(record: StoredRecord, replicas: Replicas, consistency: Consistency, precondition: Precondition): Promise<StoredRecord> {
    this.#ctx.counters.writes++;
    return this.#writeReplicas(record, replicas, consistency, precondition);
  }

  /**
   * Sends the record to the key's replicas — the old and the new set's
   * members while the partition moves — and waits for W of each set. The
   * ownership hears when the write settled: a node acknowledges a new
   * placement only after the writes of earlier ones settled
   * (docs/topology.md, the gate).
   * A replica that already holds a higher version keeps it and says so
   * (write-acks.ts): the write lost there, within the clock offset. Then the
   * clock is moved past that version and the record stamped again — so the
   * client's write wins, as it should: it came later — unless a precondition
   * says the write no longer applies (412), the version is too far ahead to
   * stamp past (503 CLOCK_SKEW), or concurrent writes keep winning (409
   * CONFLICT after MAX_RESTAMPS). Never an acknowledgement for a write that
   * changed nothing. The whole exchange stays within the request timeout.
   */
  async #writeReplicas(record: StoredRecord, replicas: Replicas, consistency: Consistency, precondition: Precondition): Promise<StoredRecord> {
    const sets = quorumSets(replicas.sets, consistency);
    this.#admit(sets);
    const settled = this.#ctx.ownership.writeStarted(replicas.placement);
    try {
      return await this.#writeUntilAcked(record, replicas, sets, precondition);
    } finally {
      settled();
    }
  }

  async #writeUntilAcked(record: StoredRecord, replicas: Replicas, sets: readonly QuorumSet[], precondition: Precondition): Promise<StoredRecord> {
    const ctx = this.#ctx;
    const deadlineMs = ctx.clock.now() + ctx.config.requestTimeoutMs;
    let current = record;
    for (let restamps = 0; ; restamps++) {
      const attempts = this.#replicate([current], replicas).map(({ member, promise }) => ({ member, promise: promise.then((outcomes) => outcomes[0] ?? null) }));
      const wait = await awaitWriteAcks(attempts, sets, ctx.clock, Math.max(0, deadlineMs - ctx.clock.now()));
      if (wait.kind === 'acked') return current;
      if (wait.kind === 'short') {
        ctx.counters.writeFailures++;
        const refused = wait.refused === 0 ? '' : `; ${wait.refused} refused its version as ${wait.refusedAheadMs} ms ahead of their clocks (clock skew)`;
        if (wait.timedOut) {
          throw new ServiceError('TIMEOUT', `${wait.required} of ${wait.total} replicas required, ${wait.acked} acknowledged in time${refused}`, {
            acknowledged: wait.acked,
            required: wait.required,
          });
        }
        if (refused !== '') {
          throw new ServiceError('INSUFFICIENT_REPLICAS', `${wait.required} of ${wait.total} replicas required, ${wait.acked} acknowledged${refused}`, {
            acknowledged: wait.acked,
            required: wait.required,
          });
        }
        throw insufficientReplicas(wait.acked, wait.required, wait.total);
      }
      // Lost: a replica holds a higher version.
      if (!allowsOver(precondition, wait.tombstone, wait.held)) {
        ctx.counters.writeFailures++;
        ctx.counters.preconditionFailures++;
        throw new ServiceError('PRECONDITION_FAILED', 'a replica holds a newer version of the key than the one the precondition was checked against');
      }
      if (restamps >= MAX_RESTAMPS) {
        ctx.counters.writeFailures++;
        throw new ServiceError('CONFLICT', `concurrent writes to this key kept superseding this one (${MAX_RESTAMPS + 1} attempts); retry`);
      }
      if (!observe(ctx.store, wait.held)) {
        ctx.counters.writeFailures++;
        const { wallMs, maxOffsetMs } = ctx.store.clockStatus();
        const aheadMs = wait.held.ms - wallMs;
        throw new ServiceError(
          'CLOCK_SKEW',
          `a replica holds a version of this key ${aheadMs} ms ahead of this node's clock, more than the maximum offset of ` +
            `${maxOffsetMs} ms: a write now would not win over it (the clock that stamped it was wrong)`,
          { offsetMs: aheadMs, maxOffsetMs },
        );
      }
      let version: Version;
      try {
        version = stamp(ctx.store);
      } catch (e) {
        ctx.counters.writeFailures++;
        throw e;
      }
      ctx.counters.writesRestamped++;
      current = { ...current, version };
    }
  }

  /**
   * Backpressure: a write goes out only if at least `need` of its replicas
   * can take it now (this node always can; a peer can while the bytes queued
   * for it are under its cap). Otherwise it is refused before anything is
   * written, with 503 BUSY, rather than queued past what the peers can take
   * in or turned into a timeout. Replicas beyond `need` without room get
   * the write as a hint, as for any replica the write fails on.
   */
  #admit(sets: readonly QuorumSet[]): void {
    const ctx = this.#ctx;
    for (const { members, need } of sets) {
      let room = 0;
      for (const id of members) {
        if (id === ctx.selfId) room++;
        else if (ctx.reachable(id) && ctx.peer(id).hasRoom?.() !== false) room++;
        if (room >= need) break;
      }
      if (room >= need) continue;
      const reachable = members.filter((id) => ctx.reachable(id)).length;
      // Replicas down are INSUFFICIENT_REPLICAS (the write goes on to give them hints); only busy ones shed.
      if (reachable < need) continue;
      ctx.counters.writeFailures++;
      ctx.counters.writesShed++;
      throw new ServiceError('BUSY', `the replicas of this key have too much queued (${room} of ${need} required can take a write now); retry later`, {
        acknowledged: 0,
        required: need,
      });
    }
  }


  /**
   * Sends records of one partition to its replicas — the old and the new
   * set's members, while it moves; one attempt per replica that resolves
   * when that replica (or, with `hintsCountTowardConsistency`, its stand-in)
   * holds them durably.
   *
   * - This node: applied to the local store.
   * - A reachable replica: written over the internode API; if that fails, a
   *   hint is kept on this node (not counted: the caller already failed it).
   *   Records the replica refused as too far ahead of its clock are kept as
   *   hints too: it takes them once its clock has caught up.
   * - A replica membership reports down: the records go as a hint to the
   *   first reachable member beyond the preference list in the partition's
   *   HRW ranking (the stand-in), which delivers them when the replica is
   *   back; with no stand-in this node keeps the hint.
   */
  #replicate(records: readonly StoredRecord[], replicas: Replicas): MemberAttempt<ReplicaOutcome[]>[] {
    const ctx = this.#ctx;
    const { placement, partition, sets } = replicas;
    const selfId = ctx.selfId;
    const standIns = placement.next
      .ranking(partition)
      .filter((id) => !sets.all.includes(id) && ctx.reachable(id));
    const out: MemberAttempt<ReplicaOutcome[]>[] = [];
    for (const id of sets.all) {
      if (ctx.reachable(id)) {
        const p = this.writeOn(id, records);
        if (id !== selfId) {
          ctx.track(
            p.then(
              (outcomes) => {
                const refused = records.filter((_, i) => isRefusal(outcomes[i]));
                return refused.length === 0 ? undefined : this.#keepHintLocally(id, refused);
              },
              () => this.#keepHintLocally(id, records),
            ),
          );
        }
        out.push({ member: id, promise: p });
        continue;
      }
      const standIn = standIns.shift();
      const handed = standIn === undefined ? this.#keepHintLocally(id, records) : this.#hintOn(standIn, id, records);
      if (ctx.config.hintsCountTowardConsistency && standIn !== undefined) out.push({ member: id, promise: handed.then(() => records.map(() => null)) });
      else {
        ctx.track(
          handed.catch((e: unknown) => {
            ctx.onError(`handing hints for ${id} to ${standIn ?? 'a stand-in'}`, e);
            return this.#keepHintLocally(id, records);
          }),
        );
        const down = Promise.reject(new Error(`replica ${id} is down`));
        down.catch(() => undefined);
        out.push({ member: id, promise: down });
      }
    }
    return out;
  }

  async #keepHintLocally(target: string, records: readonly StoredRecord[]): Promise<void> {
    const ctx = this.#ctx;
    ctx.counters.hintsKeptLocally++;
    try {
      await ctx.hints.add(target, records, ctx.clock.now());
    } catch (e) {
      ctx.onError('keeping a hint', e);
    }
  }

  async #hintOn(standIn: string, target: string, records: readonly StoredRecord[]): Promise<void> {
    const ctx = this.#ctx;
    if (standIn === ctx.selfId) {
      await ctx.hints.add(target, records, ctx.clock.now());
    } else {
      await ctx.peer(standIn).hint(target, records);
    }
    ctx.counters.hintsHandedToStandIns++;
  }

  /**
   * Merges records into one replica: the local store for this node, else the
   * internode API. Resolves with what it did with each (applied, held a
   * higher version, refused as too far ahead: counted). Read repair writes
   * through it too.
   */
  async writeOn(id: string, records: readonly StoredRecord[]): Promise<ReplicaOutcome[]> {
    const ctx = this.#ctx;
    let outcomes: ReplicaOutcome[];
    if (id === ctx.selfId) {
      const work = ctx.store.applyEach(records);
      const applied = await (ctx.storeHealth === undefined ? work : ctx.storeHealth.observe(work));
      outcomes = applied.map((o, i) => replicaOutcome(o, records[i]!));
    } else {
      outcomes = await ctx.peer(id).write(records);
    }
    for (const o of outcomes) if (isRefusal(o)) ctx.counters.replicaClockRefusals++;
    return outcomes;
  }
}

function isRefusal(o: ReplicaOutcome | undefined): o is { readonly aheadMs: number } {
  return o !== null && o !== undefined && 'aheadMs' in o;
}

/** Where a write goes when other nodes replicate its key too. */
export interface Replicas {
  /** The placement the write started under. */
  readonly placement: Placement;
  readonly partition: number;
  readonly sets: ReplicaSets;
}
