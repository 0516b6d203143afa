import { describe, expect, it } from 'vitest';
import { digestOfEntries } from './digest.ts';
import { DigestJournal, type DigestPlan } from './digest-journal.ts';
import { DIGEST_BYTES, bucketOf, hashKey } from './hash.ts';
import { ClockBound } from './clock-bound.ts';
import { HybridClock } from './hlc.ts';
import { JobRefused, type GroupJob, type LocalOp } from './jobs.ts';
import { dataKey, metaKey } from './keyspace.ts';
import type { LevelBatchOp } from './level.ts';
import { CHECKPOINT_KEY, COUNTS_KEY, encodeMeta } from './meta.ts';
import { mergeOps, prepareGroup, stageChanges, touchKeys, type GroupBase, type Touch } from './prepare-group.ts';
import type { StoredRecord, Version } from './types.ts';

const BITS = 2;
const WALL_MS = 1000;

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const v = (ms: number, counter = 0, node = 'n1'): Version => ({ ms, counter, node });
const live = (key: string, version: Version, value = 'x'): StoredRecord => ({ key, value: bytes(value), version, tombstone: false });
const dead = (key: string, version: Version): StoredRecord => ({ key, value: new Uint8Array(), version, tombstone: true });

const put = (key: string, ttlMs?: number): LocalOp => ({ type: 'put', key, keyBytes: bytes(key), value: bytes(`v-${key}`), contentType: undefined, ttlMs });
const del = (key: string): LocalOp => ({ type: 'delete', key, keyBytes: bytes(key) });
const ignore = (): void => undefined;
const local = (...ops: LocalOp[]): GroupJob =>
  (ops.length === 1
    ? { kind: 'local', ops: [ops[0] as LocalOp], single: true, resolve: ignore, reject: ignore }
    : { kind: 'local', ops, single: false, resolve: ignore, reject: ignore });
const apply = (...records: StoredRecord[]): GroupJob =>
  ({ kind: 'apply', detailed: false, records: records.map((record) => ({ record, keyBytes: bytes(record.key) })), resolve: ignore, reject: ignore });
/** An `applyEach` job: one outcome per record. */
const applyEach = (...records: StoredRecord[]): GroupJob =>
  ({ kind: 'apply', detailed: true, records: records.map((record) => ({ record, keyBytes: bytes(record.key) })), resolve: ignore, reject: ignore });
const reserve = (): GroupJob => ({ kind: 'reserve', resolve: ignore, reject: ignore });

function clockAt(wallMs: number, start: Version = v(0), maxOffsetMs = 60_000): HybridClock {
  return new HybridClock('n1', () => wallMs, { ms: start.ms, counter: start.counter }, maxOffsetMs);
}

function journalOf(digests = new Uint8Array(2 ** BITS * DIGEST_BYTES), maxJournalBytes = 1 << 20): DigestJournal {
  return new DigestJournal(
    { digests, lastSeq: 0, checkpointSeq: 0, counts: undefined, dirtyPages: new Set(), journalBytes: 0 },
    BITS, maxJournalBytes, CHECKPOINT_KEY, COUNTS_KEY, encodeMeta,
  );
}

/** The group's touches, with what each key holds before it. */
function touches(jobs: readonly GroupJob[], stored: readonly StoredRecord[]): Map<string, Touch> {
  const touched = touchKeys(jobs);
  for (const t of touched.values()) t.committed = t.current = stored.find((r) => r.key === t.key) ?? null;
  return touched;
}

/** A record as compact text: `key=value@ms.counter.node` or `key=†@...`, with `+ttl` when it expires. */
function show(r: StoredRecord | null | undefined): string {
  if (r === null || r === undefined) return '-';
  const at = `${r.version.ms}.${r.version.counter}.${r.version.node}`;
  return `${r.key}=${r.tombstone ? '†' : Buffer.from(r.value).toString()}@${at}${r.expiresAtMs === undefined ? '' : `+${r.expiresAtMs}`}`;
}

/** A job result as compact text: records as `show`, a refused job as `refused:CODE`, apply outcomes as `applied` / `held:ms.counter.node[†]`. */
function showResult(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(showResult);
  if (x instanceof JobRefused) return `refused:${(x.error as { code?: string }).code}`;
  if (typeof x === 'object' && x !== null && 'status' in x) {
    const o = x as { status: string; version?: Version; tombstone?: boolean };
    return o.version === undefined ? o.status : `${o.status}:${o.version.ms}.${o.version.counter}.${o.version.node}${o.tombstone === true ? '†' : ''}`;
  }
  if (typeof x === 'object' && x !== null) return show(x as StoredRecord);
  return x;
}

describe('mergeOps: the group in queue order (stamps and last-write-wins)', () => {
  const cases: {
    name: string;
    stored?: StoredRecord[];
    jobs: GroupJob[];
    /** Each touched key's record after the group. */
    current: string[];
    results: unknown[];
    /** Each change as `origin:record<previous` (`<-` when there was none). */
    changes: string[];
    reserve?: boolean;
    /** The clock's bound (default 60 s) and where it starts (default 0: the wall clock leads). */
    maxOffsetMs?: number;
    clockStart?: Version;
  }[] = [
    {
      name: 'a put of a new key is stamped by the clock',
      jobs: [local(put('a'))],
      current: ['a=v-a@1000.0.n1'],
      results: ['a=v-a@1000.0.n1'],
      changes: ['local:a=v-a@1000.0.n1<-'],
    },
    {
      name: 'a put over a version ahead of the clock is stamped just past it',
      stored: [live('a', v(5000, 3, 'n9'))],
      jobs: [local(put('a'))],
      current: ['a=v-a@5000.4.n1'],
      results: ['a=v-a@5000.4.n1'],
      changes: ['local:a=v-a@5000.4.n1<a=x@5000.3.n9'],
    },
    {
      name: 'a delete writes a tombstone over the record',
      stored: [live('a', v(10))],
      jobs: [local(del('a'))],
      current: ['a=†@1000.0.n1'],
      results: ['a=†@1000.0.n1'],
      changes: ['local:a=†@1000.0.n1<a=x@10.0.n1'],
    },
    {
      name: 'a batch writing one key twice gives increasing versions; the last wins',
      jobs: [local(put('a'), del('a'))],
      current: ['a=†@1000.1.n1'],
      results: [['a=v-a@1000.0.n1', 'a=†@1000.1.n1']],
      changes: ['local:a=v-a@1000.0.n1<-', 'local:a=†@1000.1.n1<a=v-a@1000.0.n1'],
    },
    {
      name: 'a ttl expires that long after the wall clock',
      jobs: [local(put('a', 50))],
      current: ['a=v-a@1000.0.n1+1050'],
      results: ['a=v-a@1000.0.n1+1050'],
      changes: ['local:a=v-a@1000.0.n1+1050<-'],
    },
    {
      name: 'an applied record of a new key is kept',
      jobs: [apply(live('a', v(7, 0, 'n2')))],
      current: ['a=x@7.0.n2'],
      results: [[true]],
      changes: ['replicated:a=x@7.0.n2<-'],
    },
    {
      name: 'a newer applied record replaces the stored one',
      stored: [live('a', v(7))],
      jobs: [apply(live('a', v(8), 'y'))],
      current: ['a=y@8.0.n1'],
      results: [[true]],
      changes: ['replicated:a=y@8.0.n1<a=x@7.0.n1'],
    },
    {
      name: 'an older applied record loses, and changes nothing',
      stored: [live('a', v(8))],
      jobs: [apply(live('a', v(7), 'y'))],
      current: ['a=x@8.0.n1'],
      results: [[false]],
      changes: [],
    },
    {
      name: 'an older applied tombstone does not delete a newer value',
      stored: [live('a', v(8))],
      jobs: [apply(dead('a', v(7)))],
      current: ['a=x@8.0.n1'],
      results: [[false]],
      changes: [],
    },
    {
      name: 'at an equal version a tombstone wins over a value',
      stored: [live('a', v(8))],
      jobs: [apply(dead('a', v(8)))],
      current: ['a=†@8.0.n1'],
      results: [[true]],
      changes: ['replicated:a=†@8.0.n1<a=x@8.0.n1'],
    },
    {
      name: 'at an equal version a value loses to a tombstone',
      stored: [dead('a', v(8))],
      jobs: [apply(live('a', v(8)))],
      current: ['a=†@8.0.n1'],
      results: [[false]],
      changes: [],
    },
    {
      name: 'at an equal version the higher value bytes win (deterministic tie-break)',
      stored: [live('a', v(8), 'b')],
      jobs: [apply(live('a', v(8), 'a')), apply(live('a', v(8), 'c'))],
      current: ['a=c@8.0.n1'],
      results: [[false], [true]],
      changes: ['replicated:a=c@8.0.n1<a=b@8.0.n1'],
    },
    {
      name: 'applying the stored record again changes nothing',
      stored: [live('a', v(8))],
      jobs: [apply(live('a', v(8)))],
      current: ['a=x@8.0.n1'],
      results: [[false]],
      changes: [],
    },
    {
      name: 'records applied in one job merge in order',
      jobs: [apply(live('a', v(2)), live('a', v(1)), live('a', v(3)))],
      current: ['a=x@3.0.n1'],
      results: [[true, false, true]],
      changes: ['replicated:a=x@2.0.n1<-', 'replicated:a=x@3.0.n1<a=x@2.0.n1'],
    },
    {
      name: 'an applied version moves the clock, so a later local write in the group stamps above it',
      jobs: [apply(live('a', v(3000, 5, 'n2'))), local(put('b'))],
      current: ['a=x@3000.5.n2', 'b=v-b@3000.6.n1'],
      results: [[true], 'b=v-b@3000.6.n1'],
      changes: ['replicated:a=x@3000.5.n2<-', 'local:b=v-b@3000.6.n1<-'],
    },
    {
      name: 'a local write beats an older record applied after it in the same group',
      jobs: [local(put('a')), apply(live('a', v(999, 0, 'n2')))],
      current: ['a=v-a@1000.0.n1'],
      results: ['a=v-a@1000.0.n1', [false]],
      changes: ['local:a=v-a@1000.0.n1<-'],
    },
    {
      name: 'applyEach: one outcome per record — applied, or held with the version the store keeps (higher, or the same)',
      stored: [live('a', v(8)), dead('b', v(9))],
      jobs: [applyEach(live('a', v(7), 'y'), live('b', v(5)), live('c', v(3)), live('c', v(3)), live('a', v(10), 'z'))],
      current: ['a=z@10.0.n1', 'b=†@9.0.n1', 'c=x@3.0.n1'],
      results: [['held:8.0.n1', 'held:9.0.n1†', 'applied', 'held:3.0.n1', 'applied']],
      changes: ['replicated:c=x@3.0.n1<-', 'replicated:a=z@10.0.n1<a=x@8.0.n1'],
    },
    {
      name: 'a local write to a key holding a version past the max offset is refused; the rest of the group commits',
      maxOffsetMs: 500,
      stored: [live('a', v(5000, 3, 'n9'))],
      jobs: [local(put('b')), local(put('a'), put('c')), local(del('b'))],
      current: ['b=†@1000.1.n1', 'a=x@5000.3.n9', '-'],
      results: ['b=v-b@1000.0.n1', 'refused:VERSION_AHEAD', 'b=†@1000.1.n1'],
      changes: ['local:b=v-b@1000.0.n1<-', 'local:b=†@1000.1.n1<b=v-b@1000.0.n1'],
    },
    {
      name: 'a put over a version ahead of the clock but within the max offset is stamped just past it',
      maxOffsetMs: 500,
      stored: [live('a', v(1500, 3, 'n9'))],
      jobs: [local(put('a'))],
      current: ['a=v-a@1500.4.n1'],
      results: ['a=v-a@1500.4.n1'],
      changes: ['local:a=v-a@1500.4.n1<a=x@1500.3.n9'],
    },
    {
      name: 'a clock more than the max offset ahead of the wall clock (opened on a mark from a clock ahead) stamps nothing; applies still merge',
      maxOffsetMs: 500,
      clockStart: v(1600),
      jobs: [local(put('a')), apply(live('b', v(900, 0, 'n2')))],
      current: ['-', 'b=x@900.0.n2'],
      results: ['refused:CLOCK_AHEAD', [true]],
      changes: ['replicated:b=x@900.0.n2<-'],
    },
    {
      name: 'a clock ahead of the wall clock by exactly the max offset still stamps',
      maxOffsetMs: 500,
      clockStart: v(1500),
      jobs: [local(put('a'))],
      current: ['a=v-a@1500.1.n1'],
      results: ['a=v-a@1500.1.n1'],
      changes: ['local:a=v-a@1500.1.n1<-'],
    },
    {
      name: 'a reservation job asks for a clock mark and has no result',
      jobs: [reserve()],
      current: [],
      results: [undefined],
      changes: [],
      reserve: true,
    },
  ];

  it.each(cases)('$name', ({ stored = [], jobs, current, results, changes, reserve: wantReserve = false, maxOffsetMs, clockStart }) => {
    const touched = touches(jobs, stored);
    const clock = clockAt(WALL_MS, clockStart, maxOffsetMs);
    const out = mergeOps(jobs, touched, clock, new ClockBound(clock));
    expect([...touched.values()].map((t) => show(t.current))).toEqual(current);
    expect(out.results.map(showResult)).toEqual(results);
    expect(out.changes.map((c) => `${c.origin}:${show(c.record)}<${c.previous === undefined ? '-' : show(c.previous)}`)).toEqual(changes);
    expect(out.reserve).toBe(wantReserve);
  });
});

/** The digest of a bucket holding exactly these records. */
const digestOf = (...records: StoredRecord[]): string => Buffer.from(digestOfEntries(records)).toString('hex');
const bucketOfKey = (key: string): number => bucketOf(hashKey(key), BITS);

/** Two keys in the same bucket, and one in another. */
function keysSharingABucket(): [string, string, string] {
  const byBucket = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const key = `key-${i}`;
    const list = byBucket.get(bucketOfKey(key)) ?? [];
    list.push(key);
    byBucket.set(bucketOfKey(key), list);
    const full = [...byBucket.values()].find((l) => l.length >= 2);
    const other = full === undefined ? undefined : [...byBucket.entries()].find(([b]) => b !== bucketOfKey(full[0] as string))?.[1][0];
    if (full !== undefined && other !== undefined) return [full[0] as string, full[1] as string, other];
  }
}

describe('stageChanges: data, index, digests and counters of what changed', () => {
  const [k1, k2, k3] = keysSharingABucket();
  const base: GroupBase = { keys: 10, tombstones: 2, reservedMs: 0, digests: null };

  /** Stages `after` over `before` for the touched keys; digests start as those of `before`. */
  function stage(before: StoredRecord[], after: StoredRecord[]) {
    const digests = new Uint8Array(2 ** BITS * DIGEST_BYTES);
    for (const r of before) digests.set(digestOfEntries(before.filter((o) => bucketOfKey(o.key) === bucketOfKey(r.key))), bucketOfKey(r.key) * DIGEST_BYTES);
    const journal = journalOf(digests);
    const touched = new Map<string, Touch>();
    for (const r of after) {
      const keyBytes = bytes(r.key);
      const old = before.find((o) => o.key === r.key) ?? null;
      const t: Touch = { key: r.key, keyBytes, dataKey: dataKey(keyBytes), committed: old, current: r, memo: undefined, newMemo: undefined };
      touched.set(r.key, t);
    }
    const batch: LevelBatchOp[] = [];
    const out = stageChanges(touched, base, journal, BITS, batch);
    const staged = new Map([...out.staged].map(([b, d]) => [b, d.toString('hex')]));
    return { batch, staged, keys: out.keys, tombstones: out.tombstones, touched };
  }

  it.each([
    {
      name: 'a new live key: data and index entries, its digest, one more key',
      before: [], after: [live(k1, v(5))], keys: 11, tombstones: 2, buckets: [[k1]],
    },
    {
      name: 'a new tombstone: one more tombstone',
      before: [], after: [dead(k1, v(5))], keys: 10, tombstones: 3, buckets: [[k1]],
    },
    {
      name: 'an overwrite: the old entry out of the digest, the new one in, counters unchanged',
      before: [live(k1, v(5))], after: [live(k1, v(6), 'y')], keys: 10, tombstones: 2, buckets: [[k1]],
    },
    {
      name: 'a live key deleted: one key less, one more tombstone',
      before: [live(k1, v(5))], after: [dead(k1, v(6))], keys: 9, tombstones: 3, buckets: [[k1]],
    },
    {
      name: 'a tombstone overwritten by a value: one more key, one tombstone less',
      before: [dead(k1, v(5))], after: [live(k1, v(6))], keys: 11, tombstones: 1, buckets: [[k1]],
    },
    {
      name: 'two keys of one bucket share one staged digest; a third bucket gets its own',
      before: [live(k2, v(1))], after: [live(k1, v(5)), live(k2, v(6)), live(k3, v(7))], keys: 12, tombstones: 2, buckets: [[k1, k2], [k3]],
    },
  ])('$name', ({ before, after, keys, tombstones, buckets }) => {
    const out = stage(before, after);
    expect(out.keys).toBe(keys);
    expect(out.tombstones).toBe(tombstones);
    // Two entries per changed key: the data record and the index entry.
    expect(out.batch).toHaveLength(2 * after.length);
    for (const r of after) {
      expect(out.batch.some((op) => op.type === 'put' && op.key.equals(dataKey(bytes(r.key))))).toBe(true);
    }
    // Each staged digest is that of the bucket's records after the group (the bucket held only these keys).
    const expected = new Map(buckets.map((ks) => [
      bucketOfKey(ks[0] as string),
      digestOf(...ks.map((k) => after.find((r) => r.key === k) as StoredRecord)),
    ]));
    expect(out.staged).toEqual(expected);
  });

  it('a key whose record did not change writes nothing and stages nothing', () => {
    const r = live(k1, v(5));
    const keyBytes = bytes(k1);
    const touched = new Map<string, Touch>([[k1, { key: k1, keyBytes, dataKey: dataKey(keyBytes), committed: r, current: r, memo: undefined, newMemo: undefined }]]);
    const batch: LevelBatchOp[] = [];
    const out = stageChanges(touched, base, journalOf(), BITS, batch);
    expect(batch).toEqual([]);
    expect(out.staged.size).toBe(0);
    expect([out.keys, out.tombstones]).toEqual([10, 2]);
  });

  it('the old record\'s hash memo gives the same digest as hashing it again, and becomes the new memo', () => {
    const old = live(k1, v(5));
    const next = live(k1, v(6), 'y');
    const keyBytes = bytes(k1);
    const digests = new Uint8Array(2 ** BITS * DIGEST_BYTES);
    digests.set(digestOfEntries([old]), bucketOfKey(k1) * DIGEST_BYTES);
    // A first group writes `old`; its memo is what the read cache keeps.
    const first: Touch = { key: k1, keyBytes, dataKey: dataKey(keyBytes), committed: null, current: old, memo: undefined, newMemo: undefined };
    stageChanges(new Map([[k1, first]]), base, journalOf(), BITS, []);
    expect(first.newMemo).toHaveLength(24);
    const withMemo: Touch = { ...first, committed: old, current: next, memo: first.newMemo, newMemo: undefined };
    const without: Touch = { ...first, committed: old, current: next, memo: undefined, newMemo: undefined };
    const a = stageChanges(new Map([[k1, withMemo]]), base, journalOf(digests.slice()), BITS, []);
    const b = stageChanges(new Map([[k1, without]]), base, journalOf(digests.slice()), BITS, []);
    expect(a.staged).toEqual(b.staged);
    expect(a.staged.get(bucketOfKey(k1))?.toString('hex')).toBe(digestOf(next));
    expect(withMemo.newMemo).toBe(without.newMemo);
  });

  it('builds on the digests of a group still being written', () => {
    const r1 = live(k1, v(5));
    const keyBytes1 = bytes(k1);
    const journal = journalOf();
    const t1: Touch = { key: k1, keyBytes: keyBytes1, dataKey: dataKey(keyBytes1), committed: null, current: r1, memo: undefined, newMemo: undefined };
    const first = stageChanges(new Map([[k1, t1]]), base, journal, BITS, []);
    const inFlight: DigestPlan = journal.plan([], first.staged, null, { keys: first.keys, tombstones: first.tombstones }, true);
    const r2 = live(k2, v(6));
    const keyBytes2 = bytes(k2);
    const t2: Touch = { key: k2, keyBytes: keyBytes2, dataKey: dataKey(keyBytes2), committed: null, current: r2, memo: undefined, newMemo: undefined };
    const second = stageChanges(new Map([[k2, t2]]), { ...base, keys: first.keys, digests: inFlight }, journal, BITS, []);
    expect(second.staged.get(bucketOfKey(k1))?.toString('hex')).toBe(digestOf(r1, r2));
    expect(second.keys).toBe(12);
  });
});

describe('prepareGroup: the whole batch', () => {
  const hlcKey = metaKey('hlc');
  const journalEntries = (batch: LevelBatchOp[]): LevelBatchOp[] => batch.filter((op) => op.key[0] === 0x6a);

  it.each([
    {
      name: 'a new key: data, index, a journal entry carrying the counters',
      stored: [], jobs: [local(put('a'))], reservedMs: 10_000, entries: 3, countsFlag: 1, mark: undefined,
    },
    {
      name: 'an overwrite: the journal entry carries no counters',
      stored: [live('a', v(10))], jobs: [local(put('a'))], reservedMs: 10_000, entries: 3, countsFlag: 0, mark: undefined,
    },
    {
      name: 'an apply that loses: an empty batch',
      stored: [live('a', v(10))], jobs: [apply(live('a', v(9)))], reservedMs: 10_000, entries: 0, countsFlag: undefined, mark: undefined,
    },
    {
      name: 'the clock within half the reserve of the mark: a new mark rides along',
      stored: [], jobs: [local(put('a'))], reservedMs: 1400, entries: 4, countsFlag: 1, mark: 2000,
    },
    {
      name: 'a reservation job: a new mark even with nothing else to write',
      stored: [], jobs: [reserve()], reservedMs: 10_000, entries: 1, countsFlag: undefined, mark: 10_000,
    },
  ])('$name', ({ stored, jobs, reservedMs, entries, countsFlag, mark }) => {
    const base: GroupBase = { keys: stored.filter((r) => !r.tombstone).length, tombstones: 0, reservedMs, digests: null };
    const clock = clockAt(WALL_MS);
    const group = prepareGroup(jobs, touches(jobs, stored), base, { clock, bound: new ClockBound(clock), journal: journalOf(), bucketBits: BITS, reserveMs: 1000 });
    expect(group.batch).toHaveLength(entries);
    const journal = journalEntries(group.batch);
    expect(journal.length === 0 ? undefined : (journal[0] as { value: Buffer }).value[0]).toBe(countsFlag);
    const markOp = group.batch.find((op) => op.key.equals(hlcKey));
    expect(markOp === undefined ? undefined : group.reservedMs).toBe(mark);
    if (mark === undefined) expect(group.reservedMs).toBe(reservedMs);
  });
});
