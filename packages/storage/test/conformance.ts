/**
 * The storage conformance suite, in the manner of abstract-level's shared
 * test suite: every backend (classic-level on disk, memory-level, sublevels of
 * either) runs the same tests through a factory.
 */
import { describe, expect, it } from 'vitest';
import {
  StorageError, bucketOf, compareVersions, hashKey, versionToString,
} from '../src/index.ts';
import type { Change, Store, StoreSettings, StoredRecord, Version } from '../src/index.ts';
import { allRecords, checkIntegrity } from './integrity.ts';

export interface StoreBackend {
  /** Opens a store over this backend's storage; later calls see the same data. */
  open(settings?: StoreSettings): Promise<Store>;
  /** Frees the backend's storage. */
  destroy(): Promise<void>;
}

export interface StoreFactory {
  readonly name: string;
  create(): Promise<StoreBackend>;
}

/** A wall clock the test moves by hand. */
export class ManualClock {
  ms: number;
  constructor(ms = 1_700_000_000_000) {
    this.ms = ms;
  }
  readonly now = (): number => this.ms;
}

const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).code).toBe(code);
    return;
  }
  throw new Error(`expected StorageError ${code}, got success`);
}

function remote(key: string, value: string, version: Version, extra: Partial<StoredRecord> = {}): StoredRecord {
  return { key, value: Buffer.from(value), version, tombstone: false, ...extra };
}

function tombstone(key: string, version: Version): StoredRecord {
  return { key, value: new Uint8Array(0), version, tombstone: true };
}

export function runStoreConformance(factory: StoreFactory): void {
  describe(`store conformance: ${factory.name}`, () => {
    async function withStore(settings: StoreSettings, body: (store: Store, backend: StoreBackend) => Promise<void>): Promise<void> {
      const backend = await factory.create();
      const store = await backend.open(settings);
      try {
        await body(store, backend);
      } finally {
        await store.close();
        await backend.destroy();
      }
    }

    it('puts and gets strings and bytes with content type', async () => {
      await withStore({ bucketBits: 4, nodeId: 'node-a' }, async (store) => {
        const r = await store.put('greeting', 'hello', { contentType: 'text/plain' });
        expect(r.key).toBe('greeting');
        expect(r.version.node).toBe('node-a');
        expect(r.tombstone).toBe(false);
        const got = await store.get('greeting');
        expect(text(got?.value)).toBe('hello');
        expect(got?.contentType).toBe('text/plain');
        expect(got?.version).toEqual(r.version);
        await store.put('bin', new Uint8Array([0, 255, 7]));
        expect([...(await store.get('bin'))!.value]).toEqual([0, 255, 7]);
        expect(await store.get('missing')).toBeUndefined();
        expect(store.stats()).toEqual({ keys: 2, tombstones: 0, bucketBits: 4 });
      });
    });

    it('keeps its own copy of a put value', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        const buf = new Uint8Array([1, 2, 3]);
        await store.put('k', buf);
        buf[0] = 9;
        expect([...(await store.get('k'))!.value]).toEqual([1, 2, 3]);
      });
    });

    it('keeps a value handed over with adoptValue as it is, and stores the same bytes', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        await store.put('k', 'old');
        const buf = new Uint8Array([4, 5, 6]);
        const written = await store.put('k', buf, { adoptValue: true, contentType: 'application/x-test' });
        expect(written.value).toBe(buf);
        // An overwrite is cached: the cached record holds the adopted buffer itself.
        expect((await store.get('k'))!.value).toBe(buf);
        expect(await store.get('k')).toMatchObject({ contentType: 'application/x-test', version: written.version });
        await store.put('k', 'other');
        expect((await store.get('k'))!.value).not.toBe(buf);
        // A string value is encoded whatever the option says.
        await store.put('s', 'abc', { adoptValue: true });
        expect([...(await store.get('s'))!.value]).toEqual([97, 98, 99]);
      });
    });

    it('stamps strictly increasing versions, also when the wall clock goes back', async () => {
      const clock = new ManualClock();
      // A bound wide enough for the steps back (see the max clock offset tests for what a narrower one refuses).
      await withStore({ bucketBits: 4, clock, maxClockOffsetMs: 60_000 }, async (store) => {
        const seen: Version[] = [];
        for (let i = 0; i < 20; i++) {
          seen.push((await store.put(`k${i % 3}`, `v${i}`)).version);
          clock.ms += i % 4 === 0 ? -5_000 : 1;
        }
        seen.push(store.now());
        for (let i = 1; i < seen.length; i++) expect(compareVersions(seen[i - 1]!, seen[i]!)).toBe(-1);
      });
    });

    it('deletes with a tombstone that reads as absent', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        const put = await store.put('k', 'v');
        const del = await store.delete('k');
        expect(del.tombstone).toBe(true);
        expect(del.value.length).toBe(0);
        expect(compareVersions(del.version, put.version)).toBe(1);
        expect(await store.get('k')).toBeUndefined();
        expect((await store.getRecord('k'))?.tombstone).toBe(true);
        expect(store.stats()).toMatchObject({ keys: 0, tombstones: 1 });
        expect(await checkIntegrity(store)).toEqual([]);
      });
    });

    it('answers getRecordNow like getRecord, or null when only an asynchronous read can', async () => {
      await withStore({ bucketBits: 4 }, async (store, backend) => {
        await store.put('live', 'v');
        await store.put('gone', 'v');
        await store.delete('gone');
        for (const key of ['live', 'gone', 'never']) {
          const now = store.getRecordNow(key);
          // null only when the store must wait for the backend; else the same answer as getRecord.
          if (now !== null) expect(now).toEqual(await store.getRecord(key));
        }
        // A key read once is cached, so it is answered now on every backend.
        await store.getRecord('never');
        expect(store.getRecordNow('never')).toBeUndefined();
        expect(() => store.getRecordNow('')).toThrow(expect.objectContaining({ code: 'KEY_EMPTY' }));
        // After a reopen nothing is cached: a backend with synchronous reads still answers now.
        await store.close();
        const reopened = await backend.open({});
        const fresh = reopened.getRecordNow('live');
        if (fresh !== null) expect(Buffer.from(fresh!.value).toString()).toBe('v');
        await reopened.close();
        expect(() => reopened.getRecordNow('live')).toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
      });
    });

    it('expires records by ttl on the injected clock', async () => {
      const clock = new ManualClock();
      await withStore({ bucketBits: 4, clock }, async (store) => {
        const r = await store.put('t', 'v', { ttlMs: 1000 });
        expect(r.expiresAtMs).toBe(clock.ms + 1000);
        expect(await store.get('t')).toBeDefined();
        clock.ms += 1000;
        expect(await store.get('t')).toBeUndefined();
        expect((await store.getRecord('t'))?.key).toBe('t');
        expect((await store.scan()).records).toEqual([]);
        expect((await store.scan({ includeTombstones: true })).records.map((x) => x.key)).toEqual(['t']);
      });
    });

    it('commits a batch atomically and returns one record per op', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        await store.put('b', 'old');
        const out = await store.batch([
          { type: 'put', key: 'a', value: '1' },
          { type: 'delete', key: 'b' },
          { type: 'put', key: 'c', value: new Uint8Array([3]), contentType: 'application/octet-stream' },
          { type: 'put', key: 'a', value: '2' },
        ]);
        expect(out.map((r) => [r.key, r.tombstone])).toEqual([['a', false], ['b', true], ['c', false], ['a', false]]);
        expect(compareVersions(out[0]!.version, out[3]!.version)).toBe(-1);
        expect(text((await store.get('a'))?.value)).toBe('2');
        expect(await store.get('b')).toBeUndefined();
        expect(await store.batch([])).toEqual([]);
        expect(await checkIntegrity(store)).toEqual([]);
      });
    });

    it('rejects bad input with a typed error and writes nothing', async () => {
      await withStore({ bucketBits: 4, maxValueBytes: 100 }, async (store) => {
        await store.put('keep', 'v');
        const before = await allRecords(store);
        const digestsBefore = await store.bucketDigests(0, 16);
        const bad = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
        await expectCode(store.put('', 'v'), 'KEY_EMPTY');
        await expectCode(store.put('x'.repeat(1025), 'v'), 'KEY_TOO_LONG');
        await expectCode(store.put('é'.repeat(513), 'v'), 'KEY_TOO_LONG');
        await expectCode(store.put('\ud800', 'v'), 'INVALID_KEY');
        await expectCode(bad['put']!.call(store, 42, 'v'), 'INVALID_KEY');
        await expectCode(bad['put']!.call(store, 'k', 42), 'INVALID_VALUE');
        await expectCode(bad['put']!.call(store, 'k', { a: 1 }), 'INVALID_VALUE');
        await expectCode(store.put('k', 'x'.repeat(101)), 'VALUE_TOO_LARGE');
        await expectCode(store.put('k', 'v', { ttlMs: -1 }), 'INVALID_ARGUMENT');
        await expectCode(store.put('k', 'v', { contentType: '' }), 'INVALID_ARGUMENT');
        await expectCode(store.delete(''), 'KEY_EMPTY');
        await expectCode(store.batch([{ type: 'put', key: 'ok', value: 'v' }, { type: 'put', key: '', value: 'v' }]), 'KEY_EMPTY');
        await expectCode(bad['batch']!.call(store, [{ type: 'nope', key: 'k' }]), 'INVALID_ARGUMENT');
        await expectCode(bad['apply']!.call(store, null), 'INVALID_RECORD');
        await expectCode(bad['apply']!.call(store, { key: 'k', value: 'str', version: { ms: 1, counter: 0, node: 'n' }, tombstone: false }), 'INVALID_RECORD');
        await expectCode(bad['apply']!.call(store, { key: 'k', value: new Uint8Array(), version: { ms: -1, counter: 0, node: 'n' }, tombstone: false }), 'INVALID_RECORD');
        await expectCode(store.applyMany([remote('ok', 'v', { ms: 1, counter: 0, node: 'n' }), remote('', 'v', { ms: 1, counter: 0, node: 'n' })]), 'INVALID_RECORD');
        await expectCode(store.get(''), 'KEY_EMPTY');
        await expectCode(store.getRecords(['a', '']), 'KEY_EMPTY');
        await expectCode(store.scan({ limit: 0 }), 'INVALID_ARGUMENT');
        await expectCode(store.scan({ cursor: '!!' }), 'INVALID_CURSOR');
        await expectCode(store.bucketDigests(0, 17), 'INVALID_ARGUMENT');
        await expectCode(store.bucketEntries(16), 'INVALID_ARGUMENT');
        await expectCode(store.purgeTombstones({ beforeMs: 1, fromBucket: 3, toBucket: 2 }), 'INVALID_ARGUMENT');
        expect(await allRecords(store)).toEqual(before);
        expect(await store.bucketDigests(0, 16)).toEqual(digestsBefore);
        expect(store.stats()).toMatchObject({ keys: 1, tombstones: 0 });
      });
    });

    it('applies replicated records by last-write-wins, idempotently', async () => {
      await withStore({ bucketBits: 4, nodeId: 'local' }, async (store) => {
        const v1 = { ms: 1000, counter: 0, node: 'r1' };
        const v2 = { ms: 1000, counter: 1, node: 'r1' };
        const v3 = { ms: 1000, counter: 1, node: 'r2' };
        expect(await store.apply(remote('k', 'one', v1))).toBe(true);
        expect(await store.apply(remote('k', 'one', v1))).toBe(false);
        expect(await store.apply(remote('k', 'three', v3))).toBe(true);
        expect(await store.apply(remote('k', 'two', v2))).toBe(false);
        expect(text((await store.get('k'))?.value)).toBe('three');
        // An older tombstone never deletes newer data; a newer one does, and older data never resurrects it.
        expect(await store.apply(tombstone('k', v2))).toBe(false);
        expect(await store.apply(tombstone('k', { ms: 2000, counter: 0, node: 'r1' }))).toBe(true);
        expect(await store.apply(remote('k', 'zombie', v3))).toBe(false);
        expect(await store.get('k')).toBeUndefined();
        expect(await store.applyMany([remote('a', '1', v1), remote('a', '0', { ms: 999, counter: 0, node: 'r1' }), remote('b', '1', v1)]))
          .toEqual([true, false, true]);
        expect(text((await store.get('a'))?.value)).toBe('1');
        expect(await checkIntegrity(store)).toEqual([]);
      });
    });

    it('observes applied versions so later local writes sort after them', async () => {
      const clock = new ManualClock(1_000_000);
      await withStore({ bucketBits: 4, clock, maxClockOffsetMs: 10_000 }, async (store) => {
        const ahead = { ms: 1_005_000, counter: 7, node: 'other' };
        await store.apply(remote('x', 'remote', ahead));
        const mine = await store.put('y', 'local');
        expect(compareVersions(mine.version, ahead)).toBe(1);
        // A write to a key holding a version ahead of the clock (within the offset) is stamped past it, so it wins.
        await store.apply(remote('z', 'ahead', { ms: 1_009_000, counter: 0, node: 'other' }));
        const over = await store.put('z', 'mine');
        expect(over.version).toEqual({ ms: 1_009_000, counter: 1, node: store.nodeId });
        expect(text((await store.get('z'))?.value)).toBe('mine');
      });
    });

    it('refuses versions more than the max clock offset ahead of its wall clock on every way in, and counts them', async () => {
      const clock = new ManualClock(1_000_000);
      await withStore({ bucketBits: 4, clock, maxClockOffsetMs: 500 }, async (store) => {
        const far = { ms: 1_000_501, counter: 0, node: 'skewed' };
        const edge = { ms: 1_000_500, counter: 9, node: 'other' };
        await expectCode(store.apply(remote('far', 'x', far)), 'VERSION_AHEAD');
        // applyMany is all or nothing: the good record in the call is not written either.
        await expectCode(store.applyMany([remote('ok', 'x', edge), tombstone('far', far)]), 'VERSION_AHEAD');
        expect(await store.getRecords(['far', 'ok'])).toEqual([undefined, undefined]);
        expect(() => store.observe(far)).toThrow(expect.objectContaining({ code: 'VERSION_AHEAD', details: expect.objectContaining({ aheadMs: 501, maxOffsetMs: 500 }) }));
        // The clock did not move: a fresh stamp is the wall clock.
        expect(store.now()).toEqual({ ms: 1_000_000, counter: 0, node: store.nodeId });
        // applyEach decides per record: the far one is refused, the others are merged.
        expect(await store.applyEach([remote('far', 'x', far), remote('ok', 'x', edge), remote('ok', 'old', { ms: 1, counter: 0, node: 'a' })]))
          .toEqual([
            { status: 'refused', code: 'VERSION_AHEAD', aheadMs: 501 },
            { status: 'applied' },
            { status: 'held', version: edge, tombstone: false },
          ]);
        expect(await store.get('far')).toBeUndefined();
        expect(text((await store.get('ok'))?.value)).toBe('x');
        expect(store.clockStatus()).toMatchObject({ versionsRefused: 4, stampsRefused: 0, maxOffsetMs: 500 });
        // Once the wall clock has moved on, the same record is within the bound.
        clock.ms += 1;
        expect(await store.apply(remote('far', 'x', far))).toBe(true);
        expect(await checkIntegrity(store)).toEqual([]);
      });
    });

    it('stamps nothing while its clock runs more than the max offset ahead of a wall clock set back, and resumes above every earlier stamp', async () => {
      const clock = new ManualClock(1_000_000);
      await withStore({ bucketBits: 4, clock, maxClockOffsetMs: 500 }, async (store) => {
        const before = await store.put('a', '1');
        clock.ms -= 2000;
        await expectCode(store.put('a', '2'), 'CLOCK_AHEAD');
        await expectCode(store.delete('a'), 'CLOCK_AHEAD');
        await expectCode(store.batch([{ type: 'put', key: 'b', value: 'x' }]), 'CLOCK_AHEAD');
        await expectCode(() => store.now(), 'CLOCK_AHEAD');
        expect(text((await store.get('a'))?.value)).toBe('1');
        // Replicated records still merge meanwhile.
        expect(await store.apply(remote('c', 'x', { ms: 998_000, counter: 0, node: 'other' }))).toBe(true);
        expect(store.clockStatus()).toMatchObject({ wallMs: 998_000, aheadMs: 2000, stampsResumeAtMs: 999_500, stampsRefused: 4, versionsRefused: 0 });
        clock.ms = 999_500;
        const after = await store.put('a', '3');
        expect(compareVersions(after.version, before.version)).toBe(1);
        expect(store.clockStatus().stampsResumeAtMs).toBeNull();
      });
    });

    it('reads many records raw, in order, tombstones included', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        await store.put('a', '1');
        await store.delete('b');
        const got = await store.getRecords(['b', 'zz', 'a']);
        expect(got.map((r) => r && [r.key, r.tombstone])).toEqual([['b', true], undefined, ['a', false]]);
      });
    });

    it('scans by prefix and range with a cursor, in UTF-8 byte order', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        const keys = ['a', 'a/1', 'a/2', 'a/3', 'a0', 'b', 'é', '\u{1F600}', 'ｚ'];
        await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: key })));
        await store.delete('a/2');
        const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect((await store.scan()).records.map((r) => r.key)).toEqual(sorted.filter((k) => k !== 'a/2'));
        expect((await store.scan({ prefix: 'a/' })).records.map((r) => r.key)).toEqual(['a/1', 'a/3']);
        expect((await store.scan({ prefix: 'a/', includeTombstones: true })).records.map((r) => r.key)).toEqual(['a/1', 'a/2', 'a/3']);
        expect((await store.scan({ gte: 'a0', lt: 'é' })).records.map((r) => r.key)).toEqual(['a0', 'b']);
        const paged: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.scan({ limit: 2, includeTombstones: true, ...(cursor === null ? {} : { cursor }) });
          expect(page.records.length).toBeLessThanOrEqual(2);
          paged.push(...page.records.map((r) => r.key));
          cursor = page.next;
          pages++;
        } while (cursor !== null);
        expect(paged).toEqual(sorted);
        expect(pages).toBe(Math.ceil(sorted.length / 2));
        expect((await store.scan({ prefix: 'nothing' })).next).toBeNull();
      });
    });

    it('emits one change event per applied change', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        const events: Change[] = [];
        const stop = store.subscribe((c) => events.push(c));
        const first = await store.put('k', '1');
        await store.delete('k');
        const v = { ms: 1, counter: 0, node: 'r' };
        await store.apply(remote('old', 'x', v));
        await store.apply(remote('old', 'x', v));
        await store.apply(remote('k', 'stale', v));
        store.subscribe(() => { throw new Error('a broken listener'); });
        await store.batch([{ type: 'put', key: 'm', value: '1' }, { type: 'put', key: 'n', value: '2' }]);
        stop();
        await store.put('after', 'x');
        expect(events.map((e) => [e.record.key, e.record.tombstone, e.origin, e.previous?.version])).toEqual([
          ['k', false, 'local', undefined],
          ['k', true, 'local', first.version],
          ['old', false, 'replicated', undefined],
          ['m', false, 'local', undefined],
          ['n', false, 'local', undefined],
        ]);
      });
    });

    it('reads the entries of many buckets at once, as bucketEntries does one by one', async () => {
      await withStore({ bucketBits: 6 }, async (store) => {
        await store.batch(Array.from({ length: 300 }, (_, i) => ({ type: 'put' as const, key: `key-${i}`, value: `${i}` })));
        for (let i = 0; i < 300; i += 7) await store.delete(`key-${i}`);
        const one = async (list: number[]): Promise<unknown[]> => Promise.all(list.map((b) => store.bucketEntries(b)));
        const lists = [
          Array.from({ length: 64 }, (_, b) => b), // every bucket: one range read
          [63, 0, 5, 6, 7, 40, 41, 12], // unsorted, runs and gaps
          [9, 9, 3, 9], // repeats
          [2], [],
        ];
        for (const list of lists) expect(await store.bucketEntriesMany(list)).toEqual(await one(list));
        const all = await store.bucketEntriesMany(lists[0]!);
        expect(all.reduce((n, e) => n + e.length, 0)).toBe(300);
        await expectCode(store.bucketEntriesMany([64]), 'INVALID_ARGUMENT');
        await expectCode(store.bucketEntriesMany([1.5]), 'INVALID_ARGUMENT');
      });
    });

    it('keeps bucket entries sorted and digests equal to a recomputation', async () => {
      await withStore({ bucketBits: 3 }, async (store) => {
        await store.batch(Array.from({ length: 60 }, (_, i) => ({ type: 'put' as const, key: `key-${i}`, value: `${i}` })));
        for (let i = 0; i < 60; i += 3) await store.delete(`key-${i}`);
        const all = [];
        for (let b = 0; b < 8; b++) {
          const entries = await store.bucketEntries(b);
          for (let i = 1; i < entries.length; i++) expect(entries[i - 1]!.keyHash <= entries[i]!.keyHash).toBe(true);
          for (const e of entries) {
            expect(e.keyHash).toBe(hashKey(e.key));
            expect(bucketOf(e.keyHash, 3)).toBe(b);
          }
          all.push(...entries);
        }
        expect(all.length).toBe(60);
        expect(await checkIntegrity(store)).toEqual([]);
        const empty = await withEmpty();
        expect(empty.every((d) => d.every((x) => x === 0))).toBe(true);
      });
      async function withEmpty(): Promise<Uint8Array[]> {
        const backend = await factory.create();
        const s = await backend.open({ bucketBits: 3 });
        const d = await s.bucketDigests(0, 8);
        await s.close();
        await backend.destroy();
        return d;
      }
    });

    it('purges old tombstones with their index entries, within a bucket range', async () => {
      const clock = new ManualClock();
      await withStore({ bucketBits: 2, clock }, async (store) => {
        const keys = Array.from({ length: 40 }, (_, i) => `p${i}`);
        await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: 'v' })));
        for (const key of keys.slice(0, 20)) await store.delete(key);
        clock.ms += 10_000;
        for (const key of keys.slice(20, 25)) await store.delete(key);
        const cut = clock.ms - 5_000;
        const inBucket0 = keys.slice(0, 20).filter((k) => bucketOf(hashKey(k), 2) === 0).length;
        expect(await store.purgeTombstones({ beforeMs: cut, fromBucket: 0, toBucket: 1 })).toBe(inBucket0);
        expect(await checkIntegrity(store)).toEqual([]);
        expect(await store.purgeTombstones({ beforeMs: cut })).toBe(20 - inBucket0);
        expect(store.stats()).toMatchObject({ keys: 15, tombstones: 5 });
        expect(await store.getRecord('p0')).toBeUndefined();
        expect((await store.getRecord('p21'))?.tombstone).toBe(true);
        expect(await checkIntegrity(store)).toEqual([]);
        expect(await store.purgeTombstones({ beforeMs: cut })).toBe(0);
      });
    });

    it('drops every record of a bucket range, live and deleted, with digests and counts, and nothing else', async () => {
      await withStore({ bucketBits: 2 }, async (store) => {
        const keys = Array.from({ length: 40 }, (_, i) => `d${i}`);
        await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: 'v' })));
        for (const key of keys.slice(0, 10)) await store.delete(key);
        const inBucket1 = keys.filter((k) => bucketOf(hashKey(k), 2) === 1);
        const digestsBefore = await store.bucketDigests(0, 4);
        expect(await store.dropRange({ fromBucket: 1, toBucket: 2 })).toBe(inBucket1.length);
        expect(await checkIntegrity(store)).toEqual([]);
        const live = keys.slice(10).filter((k) => !inBucket1.includes(k)).length;
        const dead = keys.slice(0, 10).filter((k) => !inBucket1.includes(k)).length;
        expect(store.stats()).toMatchObject({ keys: live, tombstones: dead });
        for (const key of inBucket1) expect(await store.getRecord(key)).toBeUndefined();
        const digestsAfter = await store.bucketDigests(0, 4);
        expect(digestsAfter[1]).toEqual(new Uint8Array(16));
        for (const b of [0, 2, 3]) expect(digestsAfter[b]).toEqual(digestsBefore[b]);
        expect(await store.bucketEntries(1)).toEqual([]);
        // A key dropped is simply absent: an older record applied later is taken (nothing shadows it).
        const again = inBucket1[0]!;
        expect(await store.apply({ key: again, value: new TextEncoder().encode('old'), version: { ms: 1, counter: 0, node: 'x' }, tombstone: false })).toBe(true);
        await expectCode(store.dropRange({ fromBucket: 3, toBucket: 2 }), 'INVALID_ARGUMENT');
      });
    });

    it('persists node id, bucket bits, digests, stats and the clock across reopen', async () => {
      const clock = new ManualClock();
      const backend = await factory.create();
      try {
        let store = await backend.open({ bucketBits: 5, clock, nodeId: 'n1' });
        const last = await store.put('a', '1');
        await store.delete('b');
        const digests = await store.bucketDigests(0, 32);
        await store.close();
        await expectCode(backend.open({ nodeId: 'n2' }), 'NODE_ID_MISMATCH');
        await expectCode(backend.open({ bucketBits: 6 }), 'BUCKET_BITS_MISMATCH');
        // The wall clock went back an hour: the persisted high-water mark is not trusted blindly.
        clock.ms -= 3_600_000;
        await expectCode(backend.open({ clock }), 'CLOCK_AHEAD');
        store = await backend.open({ clock, acceptClockAhead: true });
        // Accepted: the clock stays at the mark, and stamps nothing until the wall clock catches up.
        expect(store.clockStatus().stampsResumeAtMs).toBeGreaterThan(clock.ms + 3_590_000);
        await expectCode(store.put('c', '2'), 'CLOCK_AHEAD');
        clock.ms += 3_600_000;
        await store.close();
        store = await backend.open({ clock });
        expect(store.nodeId).toBe('n1');
        expect(store.bucketBits).toBe(5);
        expect(store.stats()).toEqual({ keys: 1, tombstones: 1, bucketBits: 5 });
        expect(await store.bucketDigests(0, 32)).toEqual(digests);
        const next = await store.put('c', '2');
        expect(compareVersions(next.version, last.version)).toBe(1);
        expect(versionToString(next.version)).toMatch(/^\d+\.\d+\.n1$/);
        expect(await checkIntegrity(store)).toEqual([]);
        await store.close();
      } finally {
        await backend.destroy();
      }
    });

    it('persists stats and digests across reopen after overwrites, deletes, applies and purges', async () => {
      // Counts are written only by batches that change them; the reopened store must still agree with its data.
      const clock = new ManualClock();
      const backend = await factory.create();
      const reopen = async (store: Store): Promise<Store> => {
        const stats = store.stats();
        const digests = await store.bucketDigests(0, 8);
        await store.close();
        const reopened = await backend.open({ clock });
        expect(reopened.stats()).toEqual(stats);
        expect(await reopened.bucketDigests(0, 8)).toEqual(digests);
        expect(await checkIntegrity(reopened)).toEqual([]);
        return reopened;
      };
      try {
        let store = await backend.open({ bucketBits: 3, clock, nodeId: 'n1' });
        await store.batch(Array.from({ length: 20 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: `v${i}` })));
        for (let round = 0; round < 3; round++) {
          await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`k${i}`, `r${round}-${i}`)));
        }
        await Promise.all([store.delete('k1'), store.delete('k2'), store.put('k3', 'x'), store.delete('k1')]);
        await store.put('k2', 'back');
        await store.apply(tombstone('k4', { ms: clock.ms - 10_000, counter: 0, node: 'r' })); // older: loses
        await store.apply(tombstone('k5', { ms: clock.ms + 400, counter: 0, node: 'r' })); // ahead, within the max offset
        store = await reopen(store);
        expect(store.stats()).toMatchObject({ keys: 18, tombstones: 2 });
        clock.ms += 20_000;
        expect(await store.purgeTombstones({ beforeMs: clock.ms })).toBe(2);
        await store.put('k1', 'after purge');
        await store.put('k0', 'overwrite');
        store = await reopen(store);
        expect(store.stats()).toMatchObject({ keys: 19, tombstones: 0 });
        await store.close();
      } finally {
        await backend.destroy();
      }
    });

    it('refuses work after close', async () => {
      const backend = await factory.create();
      const store = await backend.open({ bucketBits: 4 });
      const pending = store.put('k', 'v');
      await store.close();
      await pending; // queued before close: still committed
      await expectCode(store.put('k', 'v'), 'STORE_CLOSED');
      await expectCode(store.get('k'), 'STORE_CLOSED');
      await expectCode(store.scan(), 'STORE_CLOSED');
      await store.close();
      await backend.destroy();
    });

    it('keeps data and index consistent under concurrent writes to the same keys', async () => {
      await withStore({ bucketBits: 4 }, async (store) => {
        const ops: Promise<unknown>[] = [];
        for (let i = 0; i < 300; i++) {
          const key = `hot-${i % 7}`;
          if (i % 5 === 0) ops.push(store.delete(key));
          else if (i % 7 === 0) ops.push(store.apply(remote(key, `r${i}`, { ms: i, counter: 0, node: 'r' })));
          else ops.push(store.put(key, `v${i}`));
        }
        const results = await Promise.all(ops);
        expect(results.length).toBe(300);
        expect(await checkIntegrity(store)).toEqual([]);
        // The last local write of each key is what it holds.
        const lastByKey = new Map<string, string | undefined>();
        for (let i = 0; i < 300; i++) {
          if (i % 7 === 0 && i % 5 !== 0) continue;
          lastByKey.set(`hot-${i % 7}`, i % 5 === 0 ? undefined : `v${i}`);
        }
        for (const [key, value] of lastByKey) expect(text((await store.get(key))?.value)).toBe(value);
      });
    });
  });
}
