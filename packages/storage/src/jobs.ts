import { PURGE_SCAN_MAX } from './purge.ts';
import type { ApplyOutcome, StoredRecord } from './types.ts';

/**
 * The work items of the commit queue. Every write — local or replicated —
 * every purge step and every clock reservation of its own is one job; the
 * committer takes jobs in queue order, so their effects land in that order.
 */

/** A local write, checked by the facade: its key's UTF-8 bytes and (for a put) the value it keeps. */
export type LocalOp =
  | { readonly type: 'put'; readonly key: string; readonly keyBytes: Buffer; readonly value: Uint8Array; readonly contentType: string | undefined; readonly ttlMs: number | undefined }
  | { readonly type: 'delete'; readonly key: string; readonly keyBytes: Buffer };

/** How a job's caller learns its outcome. */
export interface Deferred<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

export type Job =
  /** `single`: one op from put/delete, resolved with its record rather than an array of one. */
  | ({ readonly kind: 'local'; readonly ops: LocalOp[]; readonly single: false } & Deferred<StoredRecord[]>)
  | ({ readonly kind: 'local'; readonly ops: [LocalOp]; readonly single: true } & Deferred<StoredRecord>)
  /**
   * Records made elsewhere, validated and within the clock bound, with their
   * keys' UTF-8 bytes; resolved with one "changed" flag each, or (`detailed`)
   * one `ApplyOutcome` each.
   */
  | ({ readonly kind: 'apply'; readonly detailed: false; readonly records: ApplyRecord[] } & Deferred<boolean[]>)
  | ({ readonly kind: 'apply'; readonly detailed: true; readonly records: ApplyRecord[] } & Deferred<ApplyOutcome[]>)
  /**
   * One purge step over the index range [gte, lt); resolved with where the
   * next step starts (null: done). `all`: every record goes, live ones too
   * (`dropRange`), not only tombstones below `beforeMs`.
   */
  | ({ readonly kind: 'purge'; readonly beforeMs: number; readonly all: boolean; readonly gte: Buffer; readonly lt: Buffer } & Deferred<PurgeStep>)
  /** Persist a new clock mark with no write to carry it. */
  | ({ readonly kind: 'reserve' } & Deferred<void>);

export interface ApplyRecord {
  readonly record: StoredRecord;
  readonly keyBytes: Buffer;
}

/**
 * A job result that fails the job instead of resolving it: a local write
 * refused by the clock bound (clock-bound.ts) writes nothing, and the other
 * jobs of its group commit as usual.
 */
export class JobRefused {
  readonly error: Error;
  constructor(error: Error) {
    this.error = error;
  }
}

/** What one purge step did. */
export interface PurgeStep {
  readonly purged: number;
  /** Index key the next step starts at; null when the range is done. */
  readonly next: Buffer | null;
}

/** The jobs that share group commits (a purge step runs alone). */
export type GroupJob = Exclude<Job, { kind: 'purge' }>;
export type PurgeJob = Extract<Job, { kind: 'purge' }>;

/** The ops a job counts for, against the queue's bound and a group's size. */
export function jobSize(job: Job): number {
  switch (job.kind) {
    case 'local': return job.ops.length;
    case 'apply': return job.records.length;
    case 'purge': return PURGE_SCAN_MAX;
    case 'reserve': return 1;
    default: return assertNever(job);
  }
}

export function assertNever(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
