/**
 * The write of a key that has other replicas besides this node: the same
 * record to every replica of its partition's old and new sets in parallel
 * (applied locally when this node is one), acknowledged once each set has W
 * (one set when the partition does not move); a replica
 * that is down, or that the write fails on, gets the record as a hint — from
 * a stand-in beyond the preference list, or kept on this node. A write that
 * too few replicas have room for is refused with 503 BUSY before anything is
 * written (backpressure).
 */
import { insufficientReplicas, ServiceError, type Consistency } from '@hearsay/service';
import type { StoredRecord } from '@hearsay/storage';
import type { CoordinatorContext } from './coordinator-context.ts';
import { awaitJoint, quorumSets, type MemberAttempt, type QuorumSet } from './joint-quorum.ts';
import type { Placement, ReplicaSets } from './placement.ts';

export class ReplicaWriter {
  readonly #ctx: CoordinatorContext;

  constructor(ctx: CoordinatorContext) {
    this.#ctx = ctx;
  }

  /** A write to the replicas of a key that has others besides this node (counted as one write). */
  write(record: StoredRecord, replicas: Replicas, consistency: Consistency): Promise<void> {
    this.#ctx.counters.writes++;
    return this.#writeReplicas(record, replicas, consistency);
  }

  /**
   * Sends the record to every member of the old and new sets; acknowledged
   * once each set has W. The ownership hears when the write settled: a node
   * acknowledges a new placement only after the writes of earlier ones
   * settled (docs/topology.md, the gate).
   */
  async #writeReplicas(record: StoredRecord, replicas: Replicas, consistency: Consistency): Promise<void> {
    const ctx = this.#ctx;
    const sets = quorumSets(replicas.sets, consistency);
    this.#admit(sets);
    const settled = ctx.ownership.writeStarted(replicas.placement);
    let outcome;
    try {
      outcome = await awaitJoint(this.#replicate([record], replicas), sets, ctx.clock, ctx.config.requestTimeoutMs);
    } finally {
      settled();
    }
    if (!outcome.ok) {
      ctx.counters.writeFailures++;
      if (outcome.timedOut) {
        throw new ServiceError('TIMEOUT', `${outcome.required} of ${outcome.total} replicas required, ${outcome.acknowledged} acknowledged in time`, {
          acknowledged: outcome.acknowledged,
          required: outcome.required,
        });
      }
      throw insufficientReplicas(outcome.acknowledged, outcome.required, outcome.total);
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
   * - A replica membership reports down: the records go as a hint to the
   *   first reachable member beyond the preference list in the partition's
   *   HRW ranking (the stand-in), which delivers them when the replica is
   *   back; with no stand-in this node keeps the hint.
   */
  #replicate(records: readonly StoredRecord[], replicas: Replicas): MemberAttempt<unknown>[] {
    const ctx = this.#ctx;
    const { placement, partition, sets } = replicas;
    const selfId = ctx.selfId;
    const standIns = placement.next
      .ranking(partition)
      .filter((id) => !sets.all.includes(id) && ctx.reachable(id));
    const out: MemberAttempt<unknown>[] = [];
    for (const id of sets.all) {
      if (ctx.reachable(id)) {
        const p = this.writeOn(id, records);
        if (id !== selfId) {
          ctx.track(p.catch(() => this.#keepHintLocally(id, records)));
        }
        out.push({ member: id, promise: p });
        continue;
      }
      const standIn = standIns.shift();
      const handed = standIn === undefined ? this.#keepHintLocally(id, records) : this.#hintOn(standIn, id, records);
      if (ctx.config.hintsCountTowardConsistency && standIn !== undefined) out.push({ member: id, promise: handed });
      else {
        ctx.track(handed.catch(() => this.#keepHintLocally(id, records)));
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

  /** Writes records on one replica: the local store for this node, else the internode API. Read repair writes through it too. */
  async writeOn(id: string, records: readonly StoredRecord[]): Promise<void> {
    const ctx = this.#ctx;
    if (id === ctx.selfId) {
      const work = ctx.store.applyMany(records);
      await (ctx.storeHealth === undefined ? work : ctx.storeHealth.observe(work));
      return;
    }
    await ctx.peer(id).write(records);
  }
}

/** Where a write goes when other nodes replicate its key too. */
export interface Replicas {
  /** The placement the write started under. */
  readonly placement: Placement;
  readonly partition: number;
  readonly sets: ReplicaSets;
}
