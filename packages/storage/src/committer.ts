import type { RecordCache } from './cache.ts';
import { needsReservation } from './clock-reservation.ts';
import type { Committer, InFlight } from './commit-queue.ts';
import type { Counts, DigestJournal, DigestPlan } from './digest-journal.ts';
import type { HybridClock } from './hlc.ts';
import { JobRefused, type GroupJob, type PurgeJob } from './jobs.ts';
import type { ClockBound } from './clock-bound.ts';
import { journalKey } from './keyspace.ts';
import type { BatchWriter, BinaryEncodings, LevelBatchOp, LevelLike } from './level.ts';
import { prepareGroup, touchKeys, type GroupBase, type GroupContext, type Touch } from './prepare-group.ts';
import { planPurge, readPurgeRange } from './purge.ts';
import type { RecordReader } from './reader.ts';
import { decodeRecordValue } from './record.ts';
import type { Change } from './types.ts';

export interface CommitterInit {
  readonly db: LevelLike;
  readonly encodings: BinaryEncodings | undefined;
  readonly writer: BatchWriter;
  readonly reader: RecordReader;
  readonly cache: RecordCache;
  readonly clock: HybridClock;
  readonly bound: ClockBound;
  readonly journal: DigestJournal;
  readonly bucketBits: number;
  readonly reserveMs: number;
  readonly reservedMs: number;
  readonly counts: Counts;
}

/**
 * The committer behind the commit queue (commit-queue.ts), and the owner of
 * what the store has committed: the counters, the persisted clock mark, the
 * digests (through the digest journal) and the subscribers to changes. For
 * each group it reads what the keys hold — from the group being written,
 * the read cache, else the database — prepares the batch (prepare-group.ts),
 * and once the batch is written publishes it: digests, counters and clock
 * mark in memory, the read cache, then the callers and the listeners.
 *
 * Nothing else writes the store's keys, so what it reads is never racing
 * with another writer, and the read cache is updated here without any
 * invalidation protocol.
 */
export class GroupCommitter implements Committer {
  readonly #db: LevelLike;
  readonly #encodings: BinaryEncodings | undefined;
  readonly #writer: BatchWriter;
  readonly #reader: RecordReader;
  readonly #cache: RecordCache;
  readonly #clock: HybridClock;
  readonly #journal: DigestJournal;
  readonly #ctx: GroupContext;
  readonly #listeners = new Set<(change: Change) => void>();
  #keys: number;
  #tombstones: number;
  #reservedMs: number;
  /** Deletion of journal entries the last checkpoint made obsolete. */
  #clearing: Promise<void> = Promise.resolve();

  constructor(init: CommitterInit) {
    this.#db = init.db;
    this.#encodings = init.encodings;
    this.#writer = init.writer;
    this.#reader = init.reader;
    this.#cache = init.cache;
    this.#clock = init.clock;
    this.#journal = init.journal;
    this.#ctx = { clock: init.clock, bound: init.bound, journal: init.journal, bucketBits: init.bucketBits, reserveMs: init.reserveMs };
    this.#keys = init.counts.keys;
    this.#tombstones = init.counts.tombstones;
    this.#reservedMs = init.reservedMs;
  }

  /** Live keys and tombstones as committed. */
  get counts(): Counts {
    return { keys: this.#keys, tombstones: this.#tombstones };
  }

  /** Whether the clock nears the persisted mark, so a write should carry a new one. */
  needsReservation(): boolean {
    return needsReservation(this.#clock.lastMs, this.#reservedMs, this.#ctx.reserveMs);
  }

  subscribe(listener: (change: Change) => void): () => void {
    const wrapped = (change: Change): void => listener(change);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  async prepare(jobs: GroupJob[], prev: InFlight | null): Promise<InFlight> {
    const touched = touchKeys(jobs);
    const misses: Touch[] = [];
    for (const t of touched.values()) {
      const p = prev?.touched.get(t.key);
      if (p !== undefined) {
        t.committed = t.current = p.current;
        t.memo = p.current === p.committed ? p.memo : p.newMemo;
        continue;
      }
      const c = this.#cache.entry(t.key);
      if (c === undefined) misses.push(t);
      else {
        t.committed = t.current = c.record;
        t.memo = c.memo;
      }
    }
    if (misses.length > 0) {
      // Keys the write in flight does not touch: what is on disk is what it will leave.
      const read = this.#reader.read(misses.map((t) => t.dataKey));
      const values = Array.isArray(read) ? read : await read;
      for (let i = 0; i < misses.length; i++) {
        const t = misses[i] as Touch;
        const v = values[i];
        t.committed = t.current = v === undefined ? null : decodeRecordValue(t.key, v);
      }
    }
    const base: GroupBase = prev?.commit ?? { keys: this.#keys, tombstones: this.#tombstones, reservedMs: this.#reservedMs, digests: null };
    return { jobs, touched, commit: prepareGroup(jobs, touched, base, this.#ctx), write: null };
  }

  write(batch: LevelBatchOp[]): Promise<void> {
    return this.#writer.write(batch);
  }

  publish(group: InFlight): void {
    const { jobs, touched, commit } = group;
    this.#publishDigests(commit.digests);
    this.#keys = commit.keys;
    this.#tombstones = commit.tombstones;
    this.#reservedMs = commit.reservedMs;
    for (const t of touched.values()) {
      // A key this group created is not cached (it was not there before): writes of
      // new keys — a bulk load — would otherwise evict the working set and churn the
      // GC. Every other key's entry is replaced, so the cache never holds a stale record.
      if (t.committed === null && !this.#cache.has(t.key)) continue;
      this.#cache.set(t.key, t.current, t.current === t.committed ? t.memo : t.newMemo);
    }
    this.#reader.committed();
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i] as GroupJob;
      const result = commit.results[i];
      if (result instanceof JobRefused) job.reject(result.error);
      else (job.resolve as (v: unknown) => void)(result);
    }
    this.#emit(commit.changes);
  }

  async purge(job: PurgeJob): Promise<void> {
    const entries = await readPurgeRange(this.#db, this.#encodings, job.gte, job.lt);
    const plan = planPurge(entries, job.beforeMs, this.#journal, this.#ctx.bucketBits, job.all);
    const tombstones = this.#tombstones - (plan.keys.length - plan.live);
    const keys = this.#keys - plan.live;
    if (plan.batch.length > 0) {
      const digests = this.#journal.plan(plan.batch, plan.staged, null, { keys, tombstones }, true);
      await this.#writer.write(plan.batch);
      this.#publishDigests(digests);
      this.#tombstones = tombstones;
      this.#keys = keys;
      for (const key of plan.keys) this.#cache.set(key, null);
      this.#reader.committed();
    }
    job.resolve({ purged: plan.keys.length, next: plan.next });
  }

  /**
   * Once the queue is drained: checkpoints the digests (a cleanly closed
   * store has no journal to replay) and waits for background deletions.
   * Listeners are dropped.
   */
  async close(): Promise<void> {
    if (this.#journal.dirty) {
      const batch: LevelBatchOp[] = [];
      const plan = this.#journal.plan(batch, new Map(), null, { keys: this.#keys, tombstones: this.#tombstones }, false, true);
      await this.#writer.write(batch).then(() => this.#publishDigests(plan), () => undefined);
    }
    await this.#clearing;
    this.#listeners.clear();
  }

  /** After a batch is written: its digests become the digests; a checkpoint's obsolete journal is deleted in the background. */
  #publishDigests(plan: DigestPlan): void {
    if (!this.#journal.publish(plan)) return;
    const lt = journalKey(this.#journal.checkpointSeq + 1);
    const db = this.#db;
    this.#clearing = this.#clearing.then(() => db.clear({ gte: journalKey(0), lt, ...this.#encodings })).catch(() => undefined);
  }

  #emit(changes: Change[]): void {
    if (this.#listeners.size === 0) return;
    for (const change of changes) {
      for (const listener of this.#listeners) {
        try {
          listener(change);
        } catch {
          // A listener's failure must not fail a write that is already committed.
        }
      }
    }
  }
}
