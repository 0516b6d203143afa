import { StorageError } from './errors.ts';
import { jobSize, type GroupJob, type Job, type PurgeJob } from './jobs.ts';
import type { LevelBatchOp } from './level.ts';
import type { PreparedGroup, Touch } from './prepare-group.ts';

/** Most ops coalesced into one LevelDB batch. */
export const GROUP_OPS_MAX = 4096;
/**
 * A queue of at least this many jobs, met with no write in flight, is taken
 * in two halves (see `CommitQueue`). Below it a half's write is too short
 * to cover the cost of the extra batch.
 */
export const SPLIT_MIN_JOBS = 16;

/** A prepared group, and its batch's write once started. */
export interface InFlight {
  readonly jobs: GroupJob[];
  readonly touched: Map<string, Touch>;
  readonly commit: PreparedGroup;
  write: Promise<void> | null;
}

/** What the queue drives: the committer (committer.ts). */
export interface Committer {
  /** Reads what a group's keys hold — after `prev`, the group being written, if any — and prepares its batch. */
  prepare(jobs: GroupJob[], prev: InFlight | null): Promise<InFlight>;
  /** Writes a batch. */
  write(batch: LevelBatchOp[]): Promise<void>;
  /** After a group's batch is written: publish it to memory, resolve its jobs, tell listeners. */
  publish(group: InFlight): void;
  /** Runs one purge step to the end (read, write, publish) and settles its job. */
  purge(job: PurgeJob): Promise<void>;
}

/**
 * The one ordered commit queue every write goes through: local and
 * replicated writes, purge steps and clock reservations. The committer
 * takes every queued job (up to GROUP_OPS_MAX ops) as one group and commits
 * it as one LevelDB batch, so concurrent writes to a key are serialized
 * without locks, data and index always agree, and concurrent writers share
 * batches (group commit). A purge step is a group of its own.
 *
 * Pipelined: while one group's batch is written by LevelDB (on the libuv
 * thread pool), the next group is prepared in JavaScript on top of the
 * state that write will leave. Batches are still written one at a time, in
 * queue order. If a write fails, its jobs fail, and the group prepared on
 * top of it goes back to the head of the queue, to be prepared again from
 * what is really on disk.
 *
 * Concurrent writers keep the pipeline fed only if their writes do not all
 * land in one group: N writers awaiting their puts all wait on the batch in
 * flight, and queue their next puts together when it lands. So a queue of
 * at least SPLIT_MIN_JOBS met with nothing in flight is taken in two halves:
 * the second half is prepared while the first is written, and from then on
 * the two halves' writers alternate. Writing a batch takes LevelDB longer
 * than preparing it takes us, so without the split the main thread would
 * mostly wait (docs/storage.md has the measurements).
 *
 * Bounded: at most `maxPendingOps` ops wait; more are refused with BUSY.
 */
export class CommitQueue {
  readonly #committer: Committer;
  readonly #maxPendingOps: number;
  #queue: Job[] = [];
  #pendingOps = 0;
  #drain: Promise<void> | null = null;
  #closing = false;

  constructor(committer: Committer, maxPendingOps: number) {
    this.#committer = committer;
    this.#maxPendingOps = maxPendingOps;
  }

  /**
   * Queues a job, or settles it at once: STORE_CLOSED once closing (except a
   * clock reservation, which closing still lets through), BUSY past the bound.
   */
  enqueue(job: Job): void {
    if (this.#closing && job.kind !== 'reserve') {
      job.reject(new StorageError('STORE_CLOSED', 'the store is closed'));
      return;
    }
    const size = jobSize(job);
    if (this.#pendingOps > 0 && this.#pendingOps + size > this.#maxPendingOps) {
      job.reject(new StorageError('BUSY', `more than ${this.#maxPendingOps} writes are queued`));
      return;
    }
    this.#queue.push(job);
    this.#pendingOps += size;
    if (this.#drain === null) this.#drain = this.#run();
  }

  /** Refuses new jobs from now on, and resolves once every queued one is done. */
  async close(): Promise<void> {
    this.#closing = true;
    while (this.#drain !== null) await this.#drain;
  }

  /**
   * Runs until the queue is empty and no write is in flight. `#drain` is
   * cleared in the same tick as the last emptiness check, so a job enqueued
   * later always starts a new run.
   */
  async #run(): Promise<void> {
    // Let the caller store the promise in #drain before anything can clear it.
    await Promise.resolve();
    const committer = this.#committer;
    let inflight: InFlight | null = null;
    try {
      while (this.#queue.length > 0 || inflight !== null) {
        if (inflight !== null && (this.#queue.length === 0 || (this.#queue[0] as Job).kind === 'purge')) {
          // Nothing to prepare meanwhile (a purge step runs alone): finish the write in flight.
          await this.#finish(inflight);
          inflight = null;
          continue;
        }
        // With nothing in flight, a long queue goes out in two halves: the second is prepared while the first is written.
        const group = this.#takeGroup(inflight === null && this.#queue.length >= SPLIT_MIN_JOBS ? this.#queue.length >> 1 : Infinity);
        const first = group[0] as Job;
        if (first.kind === 'purge') {
          try {
            await committer.purge(first);
          } catch (e) {
            first.reject(e);
          }
          continue;
        }
        const jobs = group as GroupJob[];
        let next: InFlight;
        try {
          next = await committer.prepare(jobs, inflight);
        } catch (e) {
          for (const job of jobs) job.reject(e);
          continue;
        }
        if (inflight !== null) {
          const ok = await this.#finish(inflight);
          inflight = null;
          if (!ok) {
            this.#requeue(jobs);
            continue;
          }
        }
        if (next.commit.batch.length === 0) {
          committer.publish(next);
          continue;
        }
        next.write = committer.write(next.commit.batch);
        // Awaited by #finish; never an unhandled rejection meanwhile.
        next.write.catch(() => undefined);
        inflight = next;
        // Let the writers the last publish woke up queue their next writes before we look.
        await Promise.resolve();
      }
    } finally {
      this.#drain = null;
    }
  }

  /** Waits for a group's write; publishes it (true) or fails its jobs (false). */
  async #finish(group: InFlight): Promise<boolean> {
    try {
      await group.write;
    } catch (e) {
      for (const job of group.jobs) job.reject(e);
      return false;
    }
    this.#committer.publish(group);
    return true;
  }

  /** Puts jobs taken by #takeGroup back at the head of the queue, in order. */
  #requeue(jobs: GroupJob[]): void {
    this.#queue.unshift(...jobs);
    for (const job of jobs) this.#pendingOps += jobSize(job);
  }

  /** Takes the next group off the queue: a purge step alone, else queued jobs up to GROUP_OPS_MAX ops. */
  #takeGroup(maxJobs: number): Job[] {
    const first = this.#queue[0] as Job;
    let n = 1;
    let ops = jobSize(first);
    if (first.kind !== 'purge') {
      while (n < this.#queue.length && n < maxJobs) {
        const next = this.#queue[n] as Job;
        if (next.kind === 'purge' || ops + jobSize(next) > GROUP_OPS_MAX) break;
        ops += jobSize(next);
        n++;
      }
    }
    this.#pendingOps -= ops;
    if (n === this.#queue.length) {
      const group = this.#queue;
      this.#queue = [];
      return group;
    }
    return this.#queue.splice(0, n);
  }
}
