import { describe, expect, it } from 'vitest';
import type { BatchOp } from '@hearsay/storage';
import { createMemoryPeer, decodeReply, handleRepairRequest, partitionBucketRange, repairRange, MessageType } from '../src/index.ts';
import type { SessionProgress } from '../src/index.ts';
import { openMemoryStore, seededSalt, virtualClock } from './helpers.ts';

const puts = (n: number, prefix: string, valueBytes = 20, every = 1): BatchOp[] =>
  Array.from({ length: n }, (_, i) => i)
    .filter((i) => i % every === 0)
    .map((i) => ({ type: 'put' as const, key: `key-${i}`, value: Buffer.alloc(valueBytes, `${prefix}${i}`) }));

describe('repair session', () => {
  it('in sync: one round trip, roots only', async () => {
    const a = await openMemoryStore('store-a', 8);
    const b = await openMemoryStore('store-b', 8);
    const ops = puts(500, 'v');
    const records = await a.batch(ops);
    await b.applyMany(records);
    const r = await repairRange({ local: a, remote: createMemoryPeer(b), fromBucket: 0, toBucket: 256, salt: seededSalt(1), clock: virtualClock() });
    expect(r.inSync).toBe(true);
    expect(r.stats.roundTrips).toBe(1);
    expect(r.stats.bytesSent + r.stats.bytesReceived).toBeLessThan(200);
  });

  it('a record more than the max clock offset ahead is refused by the store it would go to, each way; the rest is merged and the refusals counted', async () => {
    const T = 1_700_000_000_000;
    // a's clock runs an hour ahead of b's: what a stamped is far in b's future, not the other way round.
    const a = await openMemoryStore('store-a', 6, () => T + 3_600_000);
    const b = await openMemoryStore('store-b', 6, () => T);
    await a.batch(puts(40, 'a'));
    await b.batch(puts(40, 'b', 20, 2).map((op) => ({ ...op, key: `b-${op.key}` })));
    const r = await repairRange({ local: b, remote: createMemoryPeer(a), fromBucket: 0, toBucket: 64, salt: seededSalt(9), clock: virtualClock() });
    // b fetched a's 40 records and refused every one; a took b's 20.
    expect(r.stats).toMatchObject({ keysReceived: 40, keysApplied: 0, keysRefused: 40, keysSent: 20 });
    expect(b.stats().keys).toBe(20);
    expect(a.stats().keys).toBe(60);
    expect(b.clockStatus().versionsRefused).toBe(40);
    // The other way round: a pushes its records, b's responder refuses them and says so.
    const back = await repairRange({ local: a, remote: createMemoryPeer(b), fromBucket: 0, toBucket: 64, salt: seededSalt(10), clock: virtualClock() });
    expect(back.inSync).toBe(false);
    expect(back.stats).toMatchObject({ keysSent: 40, keysRefused: 40, keysReceived: 0 });
    expect(b.stats().keys).toBe(20);
  });

  it('reports progress a bar can draw: levels, then buckets, then done', async () => {
    const a = await openMemoryStore('store-a', 6);
    const b = await openMemoryStore('store-b', 6);
    await a.batch(puts(300, 'a'));
    await b.batch(puts(300, 'b', 20, 3));
    const events: SessionProgress[] = [];
    const r = await repairRange({
      local: a, remote: createMemoryPeer(b), fromBucket: 0, toBucket: 64, salt: seededSalt(2), clock: virtualClock(),
      limits: { summaryBucketsPerBatch: 8 }, onProgress: (p) => events.push(p),
    });
    const phases = events.map((e) => e.phase);
    expect(phases[0]).toBe('compare');
    expect(phases.at(-1)).toBe('done');
    expect(phases.indexOf('exchange')).toBeGreaterThan(phases.lastIndexOf('compare'));
    const exchange = events.filter((e) => e.phase === 'exchange');
    expect(exchange.at(-1)).toMatchObject({ done: r.stats.bucketsDiffered, total: r.stats.bucketsDiffered });
    for (let i = 1; i < exchange.length; i++) expect((exchange[i] as SessionProgress).done).toBeGreaterThanOrEqual((exchange[i - 1] as SessionProgress).done);
    expect(events.at(-1)?.stats.keysSent).toBe(r.stats.keysSent);
  });

  it('keeps every message within the configured bounds', async () => {
    const a = await openMemoryStore('store-a', 6);
    const b = await openMemoryStore('store-b', 6);
    await a.batch(puts(600, 'a', 1000));
    await b.batch(puts(600, 'b', 1000, 2));
    let largestRequest = 0;
    let largestReply = 0;
    const peer = createMemoryPeer(b, {
      beforeRequest: (body) => { largestRequest = Math.max(largestRequest, body.length); },
      afterReply: (body) => { largestReply = Math.max(largestReply, body.length); return body; },
    });
    const chunkBytes = 8 * 1024;
    const r = await repairRange({
      local: a, remote: peer, fromBucket: 0, toBucket: 64, salt: seededSalt(3), clock: virtualClock(),
      limits: { chunkBytes, summaryEntriesPerBatch: 64, fetchHashesPerRequest: 64, levelParentsPerRequest: 8 },
    });
    expect(r.stats.keysSent + r.stats.keysReceived).toBeGreaterThan(300);
    // One record (1 KB value) may overshoot a chunk.
    expect(largestRequest).toBeLessThan(chunkBytes + 1200);
    expect(largestReply).toBeLessThan(chunkBytes + 1200);
  });

  it('the rate limit spaces messages out (virtual time)', async () => {
    const a = await openMemoryStore('store-a', 6);
    const b = await openMemoryStore('store-b', 6);
    await a.batch(puts(400, 'a', 200));
    let lastReply = 0;
    const peer = createMemoryPeer(b, { afterReply: (body) => { lastReply = body.length; return body; } });
    const clock = virtualClock(1000);
    const rate = 20_000;
    const r = await repairRange({
      local: a, remote: peer, fromBucket: 0, toBucket: 64, salt: seededSalt(4), clock,
      rateLimitBytesPerSec: rate, rateLimitBurstBytes: 4096, limits: { chunkBytes: 4096 },
    });
    const total = r.stats.bytesSent + r.stats.bytesReceived;
    expect(total).toBeGreaterThan(80_000);
    expect(clock.slept).toBe(r.stats.waitedMs);
    // Average rate over the session stays at the limit (the last reply's debt is never waited for).
    expect(r.stats.durationMs).toBeGreaterThanOrEqual(((total - 4096 - lastReply) / rate) * 1000);
  });

  it('converges through the stateless responder too', async () => {
    const a = await openMemoryStore('store-a', 7);
    const b = await openMemoryStore('store-b', 7);
    await a.batch(puts(300, 'a'));
    await b.batch(puts(300, 'b', 20, 4));
    const stateless = { request: (body: Uint8Array) => handleRepairRequest(b, body) };
    const r = await repairRange({ local: a, remote: stateless, fromBucket: 0, toBucket: 128, salt: seededSalt(9), clock: virtualClock() });
    expect(r.stats.keysSent + r.stats.keysReceived).toBeGreaterThan(0);
    expect(await a.bucketDigests(0, 128)).toEqual(await b.bucketDigests(0, 128));
  });

  it('works on each partition range of a store', async () => {
    const a = await openMemoryStore('store-a', 8);
    const b = await openMemoryStore('store-b', 8);
    await a.batch(puts(400, 'a'));
    await b.batch(puts(400, 'b', 20, 5));
    let keys = 0;
    for (let p = 0; p < 16; p++) {
      const { fromBucket, toBucket } = partitionBucketRange(p, 16, 8);
      const r = await repairRange({ local: b, remote: createMemoryPeer(a), fromBucket, toBucket, salt: seededSalt(p), clock: virtualClock() });
      keys += r.stats.keysSent + r.stats.keysReceived;
    }
    expect(keys).toBeGreaterThan(0);
    expect(await a.bucketDigests(0, 256)).toEqual(await b.bucketDigests(0, 256));
  });
});

describe('tombstone safety', () => {
  it('cutoffMs is the smaller clock of the two replicas at session start', async () => {
    const a = await openMemoryStore('store-a', 4, () => 5_000_000);
    const b = await openMemoryStore('store-b', 4, () => 4_000_000);
    const r = await repairRange({ local: a, remote: createMemoryPeer(b), fromBucket: 0, toBucket: 16, salt: seededSalt(5), clock: virtualClock() });
    expect(r.cutoffMs).toBeGreaterThanOrEqual(4_000_000);
    expect(r.cutoffMs).toBeLessThan(4_001_000);
  });

  it('purging tombstones below the cut-off after a session resurrects nothing', async () => {
    let wall = 1_000_000;
    const a = await openMemoryStore('store-a', 4, () => wall);
    const b = await openMemoryStore('store-b', 4, () => wall);
    const written = await a.batch(puts(50, 'v'));
    await b.applyMany(written);
    wall += 1000;
    for (let i = 0; i < 50; i += 2) await a.delete(`key-${i}`); // b never hears of these deletes
    wall += 1000;
    const r = await repairRange({ local: b, remote: createMemoryPeer(a), fromBucket: 0, toBucket: 16, salt: seededSalt(6), clock: virtualClock() });
    expect(r.stats.keysReceived).toBe(25);
    wall += 1000;
    expect(await a.purgeTombstones({ beforeMs: r.cutoffMs })).toBe(25);
    expect(await b.purgeTombstones({ beforeMs: r.cutoffMs })).toBe(25);
    const again = await repairRange({ local: a, remote: createMemoryPeer(b), fromBucket: 0, toBucket: 16, salt: seededSalt(7), clock: virtualClock() });
    expect(again.inSync).toBe(true);
    for (let i = 0; i < 50; i++) {
      expect(await a.get(`key-${i}`) === undefined).toBe(i % 2 === 0);
      expect(await b.get(`key-${i}`) === undefined).toBe(i % 2 === 0);
    }
  });
});

describe('responder tree cache', () => {
  it('serves Level requests of an open session from the cached tree and expires it', async () => {
    const a = await openMemoryStore('store-a', 6);
    const b = await openMemoryStore('store-b', 6);
    await a.batch(puts(100, 'a'));
    await b.batch(puts(100, 'b', 20, 7).map((op) => ({ ...op, key: `b-${op.key}` })));
    let now = 0;
    let digestReads = 0;
    let entryReads = 0;
    const counted = new Proxy(b, {
      get(t, p, r) {
        const v = Reflect.get(t, p, r) as unknown;
        if (p === 'bucketDigests') return (...args: [number, number]) => { digestReads++; return t.bucketDigests(...args); };
        if (p === 'bucketEntries') return (bucket: number) => { entryReads++; return t.bucketEntries(bucket); };
        if (p === 'bucketEntriesMany') return (buckets: number[]) => { entryReads += buckets.length; return t.bucketEntriesMany(buckets); };
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
      },
    });
    const peer = createMemoryPeer(counted, { clock: { now: () => now }, sessionTtlMs: 100 });
    const r = await repairRange({ local: a, remote: peer, fromBucket: 0, toBucket: 64, salt: seededSalt(8), clock: virtualClock() });
    // Open reads the digests for the range hash; the first Level builds the tree; the other two Levels hit the cache.
    expect(r.stats.roundTrips).toBeGreaterThan(4);
    expect(digestReads).toBe(2);
    // Fetch found the keys its SummaryDiff named in the cache: each differing bucket read once.
    expect(r.stats.keysReceived).toBeGreaterThan(0);
    expect(entryReads).toBe(r.stats.bucketsDiffered);
    // After expiry a Level request rebuilds (correct, just slower).
    now = 1000;
    const reply = decodeReply(await peer.request(
      (await import('../src/index.ts')).encodeMessage({ t: MessageType.Level, from: 0, to: 64, bits: 6, salt: seededSalt(8), hb: 8, level: 2, span: 2, parents: [0] }),
    ));
    expect(reply.t).toBe(MessageType.LevelHashes);
    expect(digestReads).toBe(3);
  });
});
