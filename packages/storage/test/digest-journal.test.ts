/**
 * Digest persistence (store format 2): one journal entry per batch, pages at
 * checkpoints, replay after a crash, migration from format 1.
 */
import { MemoryLevel } from 'memory-level';
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { STORE_FORMAT, openStore, type LevelLike, type Store } from '../src/index.ts';
import { checkIntegrity } from './integrity.ts';

const meta = new Packr({ useRecords: false });
const BITS = 10;

async function keysOf(db: MemoryLevel<Buffer, Buffer>, space: string): Promise<Buffer[]> {
  const gte = Buffer.from(space, 'latin1');
  const lt = Buffer.of(gte[0]! + 1);
  return db.keys({ gte, lt, keyEncoding: 'buffer' }).all();
}

function binaryDb(): MemoryLevel<Buffer, Buffer> {
  return new MemoryLevel<Buffer, Buffer>({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
}

/** Writes, overwrites, deletes, applies and purges: every way digests change. */
async function churn(store: Store, round: number): Promise<void> {
  await Promise.all(Array.from({ length: 40 }, (_, i) => store.put(`k${round}-${i}`, `v${i}`)));
  await store.batch(Array.from({ length: 30 }, (_, i) => ({ type: 'put' as const, key: `k${round}-${i}`, value: 'again' })));
  await Promise.all(Array.from({ length: 10 }, (_, i) => store.delete(`k${round}-${i}`)));
  await store.apply({ key: `remote-${round}`, value: new Uint8Array([1]), version: { ms: 1_000 + round, counter: 0, node: 'other' }, tombstone: false });
  await store.purgeTombstones({ beforeMs: Number.MAX_SAFE_INTEGER });
}

describe('digest journal', () => {
  it('writes one journal entry per batch, not one entry per changed bucket', async () => {
    const db = binaryDb();
    const store = await openStore({ db: db as unknown as LevelLike, bucketBits: BITS });
    const before = (await keysOf(db, 'j')).length;
    // 200 keys in one batch change ~180 of 1024 buckets.
    await store.batch(Array.from({ length: 200 }, (_, i) => ({ type: 'put' as const, key: `key-${i}`, value: 'v' })));
    expect((await keysOf(db, 'j')).length).toBe(before + 1);
    expect(await keysOf(db, 'g')).toHaveLength(0);
    // The counters went into that journal entry, not into a meta entry of their own.
    const countsKey = Buffer.from('mcounts', 'latin1');
    expect(await db.get(countsKey)).toBeUndefined();
    expect(store.stats().keys).toBe(200);
    await store.close();
    // Closing checkpoints: pages, and the counters in meta.
    expect(meta.unpack((await db.get(countsKey))!)).toEqual([200, 0]);
    await db.close();
  });

  it('replays the journal when a store is opened after a crash (never closed)', async () => {
    const db = binaryDb();
    const crashed = await openStore({ db: db as unknown as LevelLike, bucketBits: BITS, nodeId: 'n1' });
    for (let round = 0; round < 5; round++) await churn(crashed, round);
    const digests = await crashed.bucketDigests(0, 2 ** BITS);
    const stats = crashed.stats();
    expect((await keysOf(db, 'j')).length).toBeGreaterThan(0);
    // No close: the process "died" here. A new store over the same data:
    const reopened = await openStore({ db: db as unknown as LevelLike });
    expect(await reopened.bucketDigests(0, 2 ** BITS)).toEqual(digests);
    expect(reopened.stats()).toEqual(stats);
    expect(await checkIntegrity(reopened)).toEqual([]);
    // Opening folded the journal into pages and deleted it.
    expect(await keysOf(db, 'j')).toHaveLength(0);
    await reopened.close();
    await db.close();
  });

  it('checkpoints pages when the journal outgrows its budget, and deletes the folded entries', async () => {
    const db = binaryDb();
    const store = await openStore({ db: db as unknown as LevelLike, bucketBits: BITS, digestJournalBytes: 2_000 });
    let journalMax = 0;
    for (let round = 0; round < 8; round++) {
      await churn(store, round);
      // Folded entries are deleted in the background; some may still be there, never many.
      journalMax = Math.max(journalMax, (await keysOf(db, 'j')).length);
    }
    // 2,000 bytes hold at most 100 changed buckets (20 bytes each); 8 rounds wrote ~50 batches of ~40 buckets.
    expect(journalMax).toBeLessThan(25);
    expect((await keysOf(db, 'p')).length).toBeGreaterThan(0);
    const digests = await store.bucketDigests(0, 2 ** BITS);
    await store.close();
    expect(await keysOf(db, 'j')).toHaveLength(0);
    const reopened = await openStore({ db: db as unknown as LevelLike });
    expect(await reopened.bucketDigests(0, 2 ** BITS)).toEqual(digests);
    expect(await checkIntegrity(reopened)).toEqual([]);
    await reopened.close();
    await db.close();
  });

  it('checkpoints on every batch with digestJournalBytes 0', async () => {
    const db = binaryDb();
    const store = await openStore({ db: db as unknown as LevelLike, bucketBits: BITS, digestJournalBytes: 0 });
    await churn(store, 0);
    expect(await keysOf(db, 'j')).toHaveLength(0);
    expect(await checkIntegrity(store)).toEqual([]);
    await store.close();
    await db.close();
  });

  it('migrates a format-1 store (one digest entry per bucket) to pages when opened', async () => {
    const db = binaryDb();
    const store = await openStore({ db: db as unknown as LevelLike, bucketBits: BITS, nodeId: 'old' });
    await churn(store, 0);
    const digests = await store.bucketDigests(0, 2 ** BITS);
    await store.close();
    // Rewrite the digests as format 1 laid them out.
    const ops: { type: 'put' | 'del'; key: Buffer; value?: Buffer }[] = [];
    for (const k of [...await keysOf(db, 'p'), ...await keysOf(db, 'j')]) ops.push({ type: 'del', key: k });
    digests.forEach((d, bucket) => {
      if (d.some((x) => x !== 0)) ops.push({ type: 'put', key: Buffer.from([0x67, 0, 0, bucket >> 8, bucket & 0xff]), value: Buffer.from(d) });
    });
    ops.push({ type: 'put', key: Buffer.from('mformat', 'latin1'), value: meta.pack(1) });
    ops.push({ type: 'del', key: Buffer.from('mdigestCheckpoint', 'latin1') });
    await db.batch(ops as never);

    const migrated = await openStore({ db: db as unknown as LevelLike });
    expect(await migrated.bucketDigests(0, 2 ** BITS)).toEqual(digests);
    expect(await checkIntegrity(migrated)).toEqual([]);
    expect(await keysOf(db, 'g')).toHaveLength(0);
    expect(meta.unpack((await db.get(Buffer.from('mformat', 'latin1')))!)).toBe(STORE_FORMAT);
    await churn(migrated, 1);
    expect(await checkIntegrity(migrated)).toEqual([]);
    await migrated.close();
    await db.close();
  });

  it('refuses a journal with a gap as CORRUPT_DATA', async () => {
    const db = binaryDb();
    const store = await openStore({ db: db as unknown as LevelLike, bucketBits: BITS });
    await churn(store, 0);
    const journal = await keysOf(db, 'j');
    expect(journal.length).toBeGreaterThan(2);
    await db.del(journal[1]!);
    await expect(openStore({ db: db as unknown as LevelLike })).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    await db.close();
  });
});
