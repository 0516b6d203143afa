/** What opening a store reads, and the commit queue's bound. */
import { MemoryLevel } from 'memory-level';
import { describe, expect, it } from 'vitest';
import { StorageError, openStore } from '../src/index.ts';
import type { LevelLike } from '../src/index.ts';

describe('openStore', () => {
  it('reads only meta, the digest pages and the (empty) digest journal, however many keys the store holds', async () => {
    const db = new MemoryLevel();
    const store = await openStore({ db, bucketBits: 8 });
    for (let i = 0; i < 20; i++) {
      await store.batch(Array.from({ length: 100 }, (_, j) => ({ type: 'put' as const, key: `k-${i}-${j}`, value: 'v' })));
    }
    const digests = await store.bucketDigests(0, 256);
    await store.close();

    const ranges: string[] = [];
    const spy = new Proxy(db, {
      get(target, prop, receiver) {
        if (prop === 'iterator') {
          return (options: { gte?: Buffer; lt?: Buffer }) => {
            ranges.push(`${options.gte?.toString('latin1')}..${options.lt?.toString('latin1')}`);
            return target.iterator(options as never);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as unknown as LevelLike;
    const reopened = await openStore({ db: spy });
    // Pages, then the journal after the checkpoint: a cleanly closed store has none.
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBe('p..q');
    expect(ranges[1]).toMatch(/^j.*\.\.k$/s);
    expect(reopened.stats()).toEqual({ keys: 2000, tombstones: 0, bucketBits: 8 });
    expect(await reopened.bucketDigests(0, 256)).toEqual(digests);
    await reopened.close();
    await db.close();
  });

  it('rejects bad options with INVALID_ARGUMENT', async () => {
    const db = new MemoryLevel();
    const bad: unknown[] = [
      {},
      { db, location: '/tmp/x' },
      { db, bucketBits: 21 },
      { db, bucketBits: 1.5 },
      { db, nodeId: 'has space' },
      { db, nodeId: '' },
      { db, cacheSize: -1 },
      { db, clock: 'yesterday' },
      { db, clock: { now: 5 } },
      { db, now: () => 0 },
      { db, maxClockOffsetMs: 9 },
      { db, maxClockOffsetMs: 100, clockReserveMs: 51 },
      { db, clockReserveMs: 1 },
      { db, acceptClockAhead: 'yes' },
    ];
    for (const options of bad) {
      await expect(openStore(options as never)).rejects.toMatchObject({ name: 'StorageError', code: 'INVALID_ARGUMENT' });
    }
    await db.close();
  });

  it('refuses writes beyond maxPendingWrites with BUSY and commits the rest', async () => {
    const db = new MemoryLevel();
    const store = await openStore({ db, bucketBits: 4, maxPendingWrites: 10 });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => store.put(`k${i}`, 'v')));
    const busy = results.filter((r) => r.status === 'rejected');
    expect(busy.length).toBeGreaterThan(0);
    for (const r of busy) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
    expect(busy.every((r) => ((r as PromiseRejectedResult).reason as StorageError).code === 'BUSY')).toBe(true);
    expect(store.stats().keys).toBe(30 - busy.length);
    await store.close();
    await db.close();
  });

  describe('the persisted clock high-water mark', () => {
    const T = 1_700_000_000_000;

    /** A store last run at wall time T (mark T + 100 ms, the default reserve), reopened at `wallMs`. */
    async function reopenAt(wallMs: number, options: { acceptClockAhead?: boolean } = {}): Promise<{ db: MemoryLevel; open: Promise<Awaited<ReturnType<typeof openStore>>> }> {
      const db = new MemoryLevel();
      const first = await openStore({ db, bucketBits: 2, clock: { now: () => T } });
      await first.put('k', 'v');
      await first.close();
      return { db, open: openStore({ db, clock: { now: () => wallMs }, ...options }) };
    }

    it('refuses to open when it is further ahead of the wall clock than the max offset plus the reserve, saying how far and what to do', async () => {
      const { db, open } = await reopenAt(T - 3_600_000);
      const error = await open.then(() => undefined, (e: unknown) => e);
      expect(error).toMatchObject({ name: 'StorageError', code: 'CLOCK_AHEAD', details: { aheadMs: 3_600_100, maxOffsetMs: 500, untilMs: T - 400 } });
      const message = (error as Error).message;
      expect(message).toContain('60.0 min ahead of the wall clock');
      expect(message).toContain(`wait until ${new Date(T - 400).toISOString()}`);
      expect(message).toContain('acceptClockAhead');
      await db.close();
    });

    it('opens a store ahead by at most the max offset plus the reserve (a restart after the wall clock stepped back a little)', async () => {
      const { db, open } = await reopenAt(T - 500);
      const store = await open;
      expect(store.clockStatus()).toMatchObject({ aheadMs: 600, stampsResumeAtMs: T - 400 });
      await store.close();
      await db.close();
    });

    it('opens with acceptClockAhead, the clock still at the mark, and stamps nothing until the wall clock is back within the offset', async () => {
      let wall = T - 3_600_000;
      const db = new MemoryLevel();
      const first = await openStore({ db, bucketBits: 2, clock: { now: () => T } });
      const last = await first.put('k', 'v');
      await first.close();
      const store = await openStore({ db, clock: { now: () => wall }, acceptClockAhead: true });
      expect(store.clockStatus()).toMatchObject({ aheadMs: 3_600_100, stampsResumeAtMs: T - 400 });
      await expect(store.put('k', 'w')).rejects.toMatchObject({ code: 'CLOCK_AHEAD' });
      expect(() => store.now()).toThrow(expect.objectContaining({ code: 'CLOCK_AHEAD' }));
      // It still reads and merges records from elsewhere.
      expect(await store.apply({ key: 'r', value: new Uint8Array(1), version: { ms: wall, counter: 0, node: 'other' }, tombstone: false })).toBe(true);
      expect((await store.get('k'))?.version).toEqual(last.version);
      // Observing what it holds (a coordinator's read) is not a refusal, though that version is far ahead of the wall clock.
      store.observe(last.version);
      expect(store.clockStatus().versionsRefused).toBe(0);
      wall = T - 400;
      const next = await store.put('k', 'w');
      expect(next.version.ms).toBeGreaterThan(last.version.ms);
      await store.close();
      await db.close();
    });
  });
});
