/**
 * The write of a key that has other replicas besides this node: the same
 * record to every replica of its preference list in parallel (applied
 * locally when this node is one), acknowledged after W confirmed; a replica
 * that is down, or that the write fails on, gets the record as a hint — from
 * a stand-in beyond the preference list, or kept on this node. A write that
 * too few replicas have room for is refused with 503 BUSY before anything is
 * written (backpressure).
 */
import { insufficientReplicas, ServiceError, type Consistency } from '@hearsay/service';
import type { StoredRecord } from '@hearsay/storage';
import type { CoordinatorContext } from './coordinator-context.ts';
import { awaitAnswers, requiredReplicas } from './quorum.ts';

export class ReplicaWriter {
  readonly #ctx: CoordinatorContext;

  constructor(ctx: CoordinatorContext) {
    this.#ctx = ctx;
  }

  /** A write to the replicas of a key that has others besides this node (counted as one write). */
  write(record: StoredRecord, partition: number, prefs: readonly string[], consistency: Consistency): Promise<void> {
    this.#ctx.counters.writes++;
    return this.#writeReplicas(record, partition, prefs, consistency);
  }

  async #writeReplicas(record: StoredRecord, partition: number, prefs: readonly string[], consistency: Consistency): Promise<void> {
    const ctx = this.#ctx;
    const need = requiredReplicas(consistency, prefs.length);
    this.#admit(prefs, need);
    const outcome = await awaitAnswers(this.#replicate([record], partition), need, ctx.clock, ctx.config.requestTimeoutMs);
    if (outcome.answers.length < need) {
      ctx.counters.writeFailures++;
      if (outcome.timedOut) {
        throw new ServiceError('TIMEOUT', `${need} of ${prefs.length} replicas required, ${outcome.answers.length} acknowledged in time`, {
          acknowledged: outcome.answers.length,
          required: need,
        });
      }
      throw insufficientReplicas(outcome.answers.length, need, prefs.length);
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
  #admit(prefs: readonly string[], need: number): void {
    const ctx = this.#ctx;
    let room = 0;
    for (const id of prefs) {
      if (id === ctx.selfId) room++;
      else if (ctx.reachable(id) && ctx.peer(id).hasRoom?.() !== false) room++;
      if (room >= need) return;
    }
    const reachable = prefs.filter((id) => ctx.reachable(id)).length;
    // Replicas down are INSUFFICIENT_REPLICAS (the write goes on to give them hints); only busy ones shed.
    if (reachable < need) return;
    ctx.counters.writeFailures++;
    ctx.counters.writesShed++;
    throw new ServiceError('BUSY', `the replicas of this key have too much queued (${room} of ${need} required can take a write now); retry later`, {
      acknowledged: 0,
      required: need,
    });
  }

  /**
   * Sends records of one partition to its replicas; one promise per
   * preference-list replica that resolves when that replica (or, with
   * `hintsCountTowardConsistency`, its stand-in) holds them durably.
   *
   * - This node: applied to the local store.
   * - A reachable replica: written over the internode API; if that fails, a
   *   hint is kept on this node (not counted: the caller already failed it).
   * - A replica membership reports down: the records go as a hint to the
   *   first reachable member beyond the preference list in the partition's
   *   HRW ranking (the stand-in), which delivers them when the replica is
   *   back; with no stand-in this node keeps the hint.
   */
  #replicate(records: readonly StoredRecord[], partition: number): Promise<unknown>[] {
    const ctx = this.#ctx;
    const map = ctx.partitionMap;
    const prefs = map.preferenceList(partition);
    const selfId = ctx.selfId;
    const standIns = map
      .ranking(partition)
      .slice(prefs.length)
      .filter((id) => ctx.reachable(id));
    const out: Promise<unknown>[] = [];
    for (const id of prefs) {
      if (ctx.reachable(id)) {
        const p = this.writeOn(id, records);
        if (id !== selfId) {
          ctx.track(p.catch(() => this.#keepHintLocally(id, records)));
        }
        out.push(p);
        continue;
      }
      const standIn = standIns.shift();
      const handed = standIn === undefined ? this.#keepHintLocally(id, records) : this.#hintOn(standIn, id, records);
      if (ctx.config.hintsCountTowardConsistency && standIn !== undefined) out.push(handed);
      else {
        ctx.track(handed.catch(() => this.#keepHintLocally(id, records)));
        out.push(Promise.reject(new Error(`replica ${id} is down`)));
        out.at(-1)!.catch(() => undefined);
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
