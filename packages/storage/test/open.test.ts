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
});
