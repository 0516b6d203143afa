import { MemoryLevel } from 'memory-level';
import { afterEach, describe, expect, it } from 'vitest';
import { bucketOf, hashKey, openStore, type LevelLike, type Store, type StoredRecord } from '@hearsay/storage';
import { readStreamPage, type StreamPage } from './stream.ts';

const BUCKET_BITS = 6;
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

async function storeWith(count: number, valueBytes = 10): Promise<Store> {
  store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'src', bucketBits: BUCKET_BITS });
  const records: StoredRecord[] = [];
  for (let i = 0; i < count; i++) {
    const tombstone = i % 7 === 3;
    records.push({ key: `k${i}`, value: tombstone ? new Uint8Array(0) : new Uint8Array(valueBytes).fill(i % 256), version: { ms: 1000 + i, counter: 0, node: 'w' }, tombstone });
  }
  await store.applyMany(records);
  return store;
}

/** Every page from `fromBucket` to `toBucket`, following `next`. */
async function allPages(s: Store, fromBucket: number, toBucket: number, limit: number, maxBytes: number): Promise<StreamPage[]> {
  const pages: StreamPage[] = [];
  let position: { bucket: number; after?: string } | null = { bucket: fromBucket };
  while (position !== null) {
    const page = await readStreamPage(s, { fromBucket: position.bucket, toBucket, limit, ...(position.after === undefined ? {} : { after: position.after }) }, maxBytes);
    pages.push(page);
    position = page.next;
    if (pages.length > 10_000) throw new Error('no end');
  }
  return pages;
}

describe('readStreamPage', () => {
  it.each([
    { why: 'one page holds the whole store', limit: 10_000, maxBytes: Infinity },
    { why: 'pages of 7 records', limit: 7, maxBytes: Infinity },
    { why: 'pages of one record', limit: 1, maxBytes: Infinity },
    { why: 'pages cut by bytes mid-bucket', limit: 10_000, maxBytes: 300 },
  ])('gives every record of the range once, tombstones included, in index order: $why', async ({ limit, maxBytes }) => {
    const s = await storeWith(200);
    const pages = await allPages(s, 0, 2 ** BUCKET_BITS, limit, maxBytes);
    const keys = pages.flatMap((p) => p.records.map((r) => r.key));
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort()).toEqual(Array.from({ length: 200 }, (_, i) => `k${i}`).sort());
    expect(pages.flatMap((p) => p.records).filter((r) => r.tombstone)).toHaveLength(Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 7 === 3).length);
    for (const p of pages) expect(p.records.length).toBeLessThanOrEqual(limit);
    // Index order: by bucket.
    const buckets = keys.map((k) => bucketOf(hashKey(k), BUCKET_BITS));
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
  });

  it('keeps to the bucket range it is asked for', async () => {
    const s = await storeWith(200);
    const pages = await allPages(s, 16, 32, 5, Infinity);
    const keys = pages.flatMap((p) => p.records.map((r) => r.key));
    const expected = Array.from({ length: 200 }, (_, i) => `k${i}`).filter((k) => {
      const b = bucketOf(hashKey(k), BUCKET_BITS);
      return b >= 16 && b < 32;
    });
    expect([...keys].sort()).toEqual(expected.sort());
  });

  it('answers at least one record even when it alone is over the byte bound', async () => {
    const s = await storeWith(10, 5000);
    const page = await readStreamPage(s, { fromBucket: 0, toBucket: 2 ** BUCKET_BITS, limit: 100 }, 1000);
    expect(page.records.length).toBe(1);
    expect(page.next).not.toBeNull();
  });

  it('resumes after a key that was deleted from the index meanwhile', async () => {
    const s = await storeWith(200);
    const first = await readStreamPage(s, { fromBucket: 0, toBucket: 2 ** BUCKET_BITS, limit: 20 }, Infinity);
    const after = first.next!;
    // The key the next page resumes after is dropped (its bucket with it): the page still starts right after its place.
    const b = bucketOf(hashKey(after.after!), BUCKET_BITS);
    const rest = await allPages(s, after.bucket, 2 ** BUCKET_BITS, 1000, Infinity);
    await s.dropRange({ fromBucket: b, toBucket: b + 1 });
    const again = await readStreamPage(s, { fromBucket: after.bucket, toBucket: 2 ** BUCKET_BITS, limit: 1000, after: after.after! }, Infinity);
    const restKeys = rest.flatMap((p) => p.records.map((r) => r.key)).filter((k) => bucketOf(hashKey(k), BUCKET_BITS) !== b);
    expect(again.records.map((r) => r.key)).toEqual(restKeys.slice(0, again.records.length));
  });
});
