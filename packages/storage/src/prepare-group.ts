import { needsReservation, renewedReservation, reservationOp } from './clock-reservation.ts';
import type { DigestJournal, DigestPlan } from './digest-journal.ts';
import { DIGEST_BYTES, bucketOfHashBytes, entryDigestLatin1, sha256Latin1, xorLatin1Into } from './hash.ts';
import type { HybridClock } from './hlc.ts';
import { JobRefused, type GroupJob, type LocalOp } from './jobs.ts';
import type { ClockBound } from './clock-bound.ts';
import { dataKey, indexKey, indexValue } from './keyspace.ts';
import type { LevelBatchOp } from './level.ts';
import { supersedes } from './merge.ts';
import { encodeRecordValue, makeRecord } from './record.ts';
import type { ApplyOutcome, Change, StoredRecord } from './types.ts';
import { compareVersions } from './version.ts';

/**
 * Group preparation: from a group of jobs and what their keys hold, the one
 * LevelDB batch that commits them and what to publish once it is written.
 * No I/O: the committer reads the keys first (committer.ts) and writes the
 * batch after. Three steps:
 *
 *  1. `mergeOps`: the ops in queue order, in memory — local writes stamped
 *     by the clock, replicated records kept only where they win by
 *     last-write-wins (merge.ts);
 *  2. `stageChanges`: for each key whose record changed, its data and index
 *     entries, its bucket digest (old entry out, new one in) and the
 *     counters;
 *  3. `prepareGroup`: both, plus the digest journal's entry (or checkpoint)
 *     and, when due, a new clock mark (clock-reservation.ts).
 *
 * A group may be prepared while the previous group's batch is still being
 * written: it then builds on what that write will leave (`GroupBase`).
 */

/** What one group knows about one key it touches. */
export interface Touch {
  readonly key: string;
  readonly keyBytes: Buffer;
  readonly dataKey: Buffer;
  /** The record before this group (null = none). */
  committed: StoredRecord | null;
  /** The record after the ops processed so far. */
  current: StoredRecord | null;
  /** `committed`'s hash memo, when known (read cache, or the group before). */
  memo: string | undefined;
  /** `current`'s hash memo once the batch is prepared. */
  newMemo: string | undefined;
}

/*
 * A record's hash memo: key hash (8 bytes) ‖ index-entry digest (16 bytes)
 * as a 24-character latin1 string (one char per byte). Kept with the record
 * in the read cache, so overwriting a cached key neither hashes the key nor
 * recomputes the old entry's digest; a string is far smaller on the heap
 * than two Buffers, and latin1 is `crypto.hash`'s cheapest output.
 */

export function newTouch(key: string, keyBytes: Buffer): Touch {
  return { key, keyBytes, dataKey: dataKey(keyBytes), committed: null, current: null, memo: undefined, newMemo: undefined };
}

/** One Touch per key the group writes, in first-seen order (`committed`/`current` filled in by the reader). */
export function touchKeys(jobs: readonly GroupJob[]): Map<string, Touch> {
  const touched = new Map<string, Touch>();
  for (const job of jobs) {
    if (job.kind === 'local') {
      for (const op of job.ops) {
        if (!touched.has(op.key)) touched.set(op.key, newTouch(op.key, op.keyBytes));
      }
    } else if (job.kind === 'apply') {
      for (const r of job.records) {
        if (!touched.has(r.record.key)) touched.set(r.record.key, newTouch(r.record.key, r.keyBytes));
      }
    }
  }
  return touched;
}

/** What a group builds on: the committed state, or what the group being written will leave. */
export interface GroupBase {
  readonly keys: number;
  readonly tombstones: number;
  /** The clock mark persisted (or being persisted). */
  readonly reservedMs: number;
  /** The digests of the group being written; null: the journal's own. */
  readonly digests: DigestPlan | null;
}

/** A group's batch and what to publish once it is written. */
export interface PreparedGroup extends GroupBase {
  readonly batch: LevelBatchOp[];
  readonly digests: DigestPlan;
  /** Change events, in op order. */
  readonly changes: Change[];
  /** One result per job, in job order (a record, records, or changed flags). */
  readonly results: unknown[];
}

/** What preparation needs besides the jobs: the store's clock, digests and settings. */
export interface GroupContext {
  readonly clock: HybridClock;
  /** The clock bound local writes are checked against (clock-bound.ts). */
  readonly bound: ClockBound;
  readonly journal: DigestJournal;
  readonly bucketBits: number;
  /** How far ahead of the clock a new mark is set. */
  readonly reserveMs: number;
}

const EMPTY = new Uint8Array(0);
const APPLIED: ApplyOutcome = Object.freeze({ status: 'applied' });

/**
 * Why a local job may not stamp: the clock runs too far ahead of the wall
 * clock, or a key it writes holds a version so far ahead that a stamp past
 * it would be too (clock-bound.ts). Checked before any of its ops is applied,
 * so a refused job changes nothing.
 */
function refuseLocal(ops: readonly LocalOp[], touched: ReadonlyMap<string, Touch>, bound: ClockBound): JobRefused | undefined {
  const clockError = bound.checkStamp();
  if (clockError !== undefined) return new JobRefused(clockError);
  for (const op of ops) {
    const prev = (touched.get(op.key) as Touch).current;
    if (prev === null) continue;
    const error = bound.checkVersion(prev.version, `key ${JSON.stringify(op.key.slice(0, 64))} holds a record that`);
    if (error !== undefined) return new JobRefused(error);
  }
  return undefined;
}

/**
 * Step 1: applies the jobs' ops to `touched` in queue order. A local write
 * is stamped by the clock — past the key's version when that is above the
 * clock (a remote clock ahead, within the bound), so a local write always
 * wins; a local job the clock bound refuses is skipped and fails. A
 * replicated record (within the bound: the facade checked) is observed by
 * the clock, and replaces the key's record only when it supersedes it.
 * `reserve`: a job asked for a clock mark.
 */
export function mergeOps(
  jobs: readonly GroupJob[], touched: ReadonlyMap<string, Touch>, clock: HybridClock, bound: ClockBound,
): { changes: Change[]; results: unknown[]; reserve: boolean } {
  const changes: Change[] = [];
  const results: unknown[] = [];
  const wallMs = clock.wallMs();
  let reserve = false;
  for (const job of jobs) {
    if (job.kind === 'local') {
      const refused = refuseLocal(job.ops, touched, bound);
      if (refused !== undefined) {
        results.push(refused);
        continue;
      }
      const out: StoredRecord[] = [];
      for (const op of job.ops) {
        const t = touched.get(op.key) as Touch;
        const prev = t.current;
        let version = clock.now();
        if (prev !== null && compareVersions(version, prev.version) <= 0) version = clock.after(prev.version);
        const record = op.type === 'put'
          ? makeRecord(op.key, op.value, version, false, op.contentType, op.ttlMs === undefined ? undefined : wallMs + op.ttlMs)
          : makeRecord(op.key, EMPTY, version, true, undefined, undefined);
        t.current = record;
        changes.push(prev === null ? { record, origin: 'local' } : { record, previous: prev, origin: 'local' });
        out.push(record);
      }
      results.push(job.single ? out[0] : out);
    } else if (job.kind === 'apply') {
      const out: (boolean | ApplyOutcome)[] = [];
      for (const { record } of job.records) {
        clock.observe(record.version);
        const t = touched.get(record.key) as Touch;
        const prev = t.current;
        if (supersedes(record, prev)) {
          t.current = record;
          changes.push(prev === null ? { record, origin: 'replicated' } : { record, previous: prev, origin: 'replicated' });
          out.push(job.detailed ? APPLIED : true);
        } else {
          // prev is not null here: a record always supersedes nothing.
          const held = prev as StoredRecord;
          out.push(job.detailed ? { status: 'held', version: held.version, tombstone: held.tombstone } : false);
        }
      }
      results.push(out);
    } else {
      reserve = true;
      results.push(undefined);
    }
  }
  return { changes, results, reserve };
}

/**
 * Step 2: for every key whose record changed, its data and index entries
 * (appended to `batch`), its bucket's digest staged with the old entry
 * XORed out and the new one in, and the counters after the group. Sets each
 * changed Touch's `newMemo`.
 */
export function stageChanges(
  touched: ReadonlyMap<string, Touch>, base: GroupBase, journal: DigestJournal, bucketBits: number, batch: LevelBatchOp[],
): { staged: Map<number, Buffer>; keys: number; tombstones: number } {
  const staged = new Map<number, Buffer>();
  let keys = base.keys;
  let tombstones = base.tombstones;
  for (const t of touched.values()) {
    const cur = t.current;
    if (cur === t.committed || cur === null) continue;
    const old = t.committed;
    const oldHashes = t.memo;
    const keyHash = oldHashes ?? sha256Latin1(t.keyBytes);
    const ik = indexKey(keyHash, t.keyBytes);
    const iv = indexValue(cur.tombstone, cur.version);
    batch.push({ type: 'put', key: t.dataKey, value: encodeRecordValue(cur) });
    batch.push({ type: 'put', key: ik, value: iv });
    const bucket = bucketOfHashBytes(ik, 1, bucketBits);
    let d = staged.get(bucket);
    if (d === undefined) {
      d = journal.stage(bucket, base.digests);
      staged.set(bucket, d);
    }
    if (old !== null) {
      if (oldHashes === undefined) xorLatin1Into(d, entryDigestLatin1(t.keyBytes, indexValue(old.tombstone, old.version)), 0);
      else xorLatin1Into(d, oldHashes, 8);
      if (old.tombstone) tombstones--;
      else keys--;
    }
    const entry = entryDigestLatin1(t.keyBytes, iv);
    xorLatin1Into(d, entry, 0);
    t.newMemo = keyHash.slice(0, 8) + entry.slice(0, DIGEST_BYTES);
    if (cur.tombstone) tombstones++;
    else keys++;
  }
  return { staged, keys, tombstones };
}

/**
 * Prepares a group: applies its ops (step 1), stages what changed (step 2),
 * and completes its batch with the digest journal's entry or checkpoint and,
 * when a job asked for one or the clock nears the mark, a new clock mark.
 */
export function prepareGroup(jobs: readonly GroupJob[], touched: ReadonlyMap<string, Touch>, base: GroupBase, ctx: GroupContext): PreparedGroup {
  const { changes, results, reserve } = mergeOps(jobs, touched, ctx.clock, ctx.bound);
  const batch: LevelBatchOp[] = [];
  const { staged, keys, tombstones } = stageChanges(touched, base, ctx.journal, ctx.bucketBits, batch);
  // The counters change only when a key appears or flips between live and tombstone, not on
  // an overwrite; then the journal entry carries them (no separate meta entry).
  const countsChanged = keys !== base.keys || tombstones !== base.tombstones;
  const digests = ctx.journal.plan(batch, staged, base.digests, { keys, tombstones }, countsChanged);
  let reservedMs = base.reservedMs;
  const clockMs = ctx.clock.lastMs;
  if (reserve || needsReservation(clockMs, reservedMs, ctx.reserveMs)) {
    reservedMs = renewedReservation(clockMs, reservedMs, ctx.reserveMs);
    batch.push(reservationOp(reservedMs));
  }
  return { batch, digests, keys, tombstones, reservedMs, changes, results };
}
