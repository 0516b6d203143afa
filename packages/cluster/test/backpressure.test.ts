/**
 * Byte budgets of replication and what happens when peers cannot keep up:
 * the peer client's batches, split writes, write window and queue cap; the
 * responder's capped answers; the coordinator refusing writes with 503 BUSY
 * when too few replicas have room; and health while the store cannot write.
 * Transports are stubs driven by the test; time is virtual.
 */
import { MemoryLevel } from 'memory-level';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceError } from '@hearsay/service';
import { openStore, type Store, type StoredRecord } from '@hearsay/storage';
import { createClusterNode, type ClusterNode } from '../src/cluster-node.ts';
import { ClusterError } from '../src/errors.ts';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { internodePackr } from '../src/internode-app.ts';
import { createInternodeHandler } from '../src/internode-handler.ts';
import { decodeRequest, type InternodeType } from '../src/internode-messages.ts';
import { StaticMembership, type MemberInfo } from '../src/membership.ts';
import { chunksOf, InternodePeerClient, recordBytes, type InternodeTransport } from '../src/peer-client.ts';
import { StoreWriteHealth, STORE_FAILURE_WINDOW_MS } from '../src/store-health.ts';
import { VirtualClock } from './virtual-clock.ts';

const KiB = 1024;
const MiB = 1024 * 1024;
const rec = (key: string, bytes: number, ms = 1): StoredRecord => ({ key, value: new Uint8Array(bytes), version: { ms, counter: 0, node: 'n9' }, tombstone: false });

/** A transport that records each request and holds its answer until released. */
function heldTransport(): {
  transport: InternodeTransport;
  requests: { type: InternodeType; body: Record<string, unknown>; bytes: number }[];
  releaseAll: (fail?: Error) => void;
  held: () => number;
} {
  const requests: { type: InternodeType; body: Record<string, unknown>; bytes: number }[] = [];
  let waiting: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void; answer: Uint8Array }[] = [];
  const transport: InternodeTransport = (type, body) => {
    const decoded = internodePackr.unpack(body) as Record<string, unknown>;
    requests.push({ type, body: decoded, bytes: body.byteLength });
    const records = (decoded['records'] as unknown[] | undefined)?.length ?? 0;
    const answer = internodePackr.pack(type === 'hint' ? { kept: records } : { applied: records });
    return new Promise((resolve, reject) => waiting.push({ resolve, reject, answer }));
  };
  return {
    transport,
    requests,
    held: () => waiting.length,
    releaseAll(fail) {
      const now = waiting;
      waiting = [];
      for (const w of now) (fail === undefined ? w.resolve(w.answer) : w.reject(fail));
    },
  };
}

/** Lets queued microtasks and immediate callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('InternodePeerClient byte budgets', () => {
  it('keeps every request within maxBatchBytes; a record larger than that goes alone', async () => {
    const clock = new VirtualClock();
    const t = heldTransport();
    const c = new InternodePeerClient(t.transport, { clock, maxBatchBytes: 3 * MiB, maxQueuedBytes: 64 * MiB });
    const writes = [c.write([rec('first', 10)]), ...Array.from({ length: 10 }, (_, i) => c.write([rec(`k${i}`, MiB)])), c.write([rec('huge', 5 * MiB)])];
    for (let i = 0; i < 20 && (t.held() > 0 || writes.length > 0); i++) {
      await clock.advance(5);
      t.releaseAll();
      await settle();
    }
    await clock.runUntil(Promise.all(writes));
    const sizes = t.requests.map((r) => (r.body['records'] as StoredRecord[]).map((x) => x.key));
    expect(sizes.flat().sort()).toEqual(['first', 'huge', ...Array.from({ length: 10 }, (_, i) => `k${i}`)].sort());
    for (const r of t.requests) {
      const records = r.body['records'] as StoredRecord[];
      if (records.length > 1) expect(records.reduce((n, x) => n + recordBytes(x), 0)).toBeLessThanOrEqual(3 * MiB);
    }
    expect(t.requests.find((r) => (r.body['records'] as StoredRecord[]).some((x) => x.key === 'huge'))!.body['records']).toHaveLength(1);
  });

  it('splits one large write into several requests and settles it when all have answered', async () => {
    const clock = new VirtualClock();
    const t = heldTransport();
    const c = new InternodePeerClient(t.transport, { clock, maxBatchBytes: 2 * MiB, maxBatchRecords: 100 });
    let done = false;
    const write = c.write(Array.from({ length: 6 }, (_, i) => rec(`k${i}`, MiB))).then(() => (done = true));
    await settle();
    // Two batches' worth in flight at most (the write window): 2 requests of 1 record each (1 MiB + a little > 2 MiB / 2).
    expect(t.held()).toBeGreaterThanOrEqual(1);
    expect(t.requests.reduce((n, r) => n + r.bytes, 0)).toBeLessThanOrEqual(4 * MiB + 4 * KiB);
    for (let i = 0; i < 20 && !done; i++) {
      t.releaseAll();
      await settle();
      await clock.advance(5);
    }
    await write;
    expect(t.requests.length).toBeGreaterThanOrEqual(3);
    expect(t.requests.flatMap((r) => (r.body['records'] as StoredRecord[]).map((x) => x.key))).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
  });

  it('rejects a split write when any of its requests fails', async () => {
    const clock = new VirtualClock();
    const t = heldTransport();
    const c = new InternodePeerClient(t.transport, { clock, maxBatchBytes: MiB });
    const write = c.write([rec('a', 900 * KiB), rec('b', 900 * KiB)]).catch((e: unknown) => e);
    await settle();
    t.releaseAll(new ClusterError('PEER_UNREACHABLE', 'gone'));
    for (let i = 0; i < 5; i++) {
      await settle();
      await clock.advance(5);
      t.releaseAll();
    }
    expect(((await write) as ClusterError).code).toBe('PEER_UNREACHABLE');
  });

  it('refuses writes at once past maxQueuedBytes (hasRoom false) and takes them again once the peer answers', async () => {
    const clock = new VirtualClock();
    const t = heldTransport();
    const c = new InternodePeerClient(t.transport, { clock, maxBatchBytes: MiB, maxQueuedBytes: 4 * MiB });
    const accepted: Promise<unknown>[] = [];
    while (c.hasRoom()) accepted.push(c.write([rec(`k${accepted.length}`, 512 * KiB)]));
    expect(accepted.length).toBe(Math.ceil((4 * MiB) / recordBytes(rec('k0', 512 * KiB))));
    expect(c.queuedBytes).toBeGreaterThanOrEqual(4 * MiB);
    const refused = await c.write([rec('over', 10)]).catch((e: unknown) => e);
    expect((refused as ClusterError).code).toBe('PEER_OVERLOADED');
    expect(c.writesRefused).toBe(1);
    // Only the write window is on the wire meanwhile: two batches.
    await settle();
    expect(t.requests.reduce((n, r) => n + r.bytes, 0)).toBeLessThanOrEqual(2 * MiB + 4 * KiB);
    for (let i = 0; i < 30 && c.queuedBytes > 0; i++) {
      t.releaseAll();
      await settle();
      await clock.advance(5);
    }
    await Promise.all(accepted);
    expect(c.queuedBytes).toBe(0);
    expect(c.hasRoom()).toBe(true);
  });

  it('has no room while its oldest queued write has waited maxQueueDelayMs, whatever the bytes', async () => {
    const clock = new VirtualClock();
    const t = heldTransport();
    const c = new InternodePeerClient(t.transport, { clock, maxBatchBytes: MiB, maxQueuedBytes: 64 * MiB, maxQueueDelayMs: 1000 });
    const writes = Array.from({ length: 4 }, (_, i) => c.write([rec(`k${i}`, 900 * KiB)]));
    await settle();
    expect(c.hasRoom()).toBe(true); // two on the wire, two waiting
    await clock.advance(999);
    expect(c.hasRoom()).toBe(true);
    await clock.advance(1);
    expect(c.hasRoom()).toBe(false);
    expect(((await c.write([rec('late', 10)]).catch((e: unknown) => e)) as ClusterError).code).toBe('PEER_OVERLOADED');
    for (let i = 0; i < 20 && t.held() > 0; i++) {
      t.releaseAll();
      await settle();
      await clock.advance(5);
    }
    await Promise.all(writes);
    expect(c.hasRoom()).toBe(true);
  });

  it('sends a large hint in chunks', async () => {
    const clock = new VirtualClock();
    const t = heldTransport();
    const c = new InternodePeerClient(t.transport, { clock, maxBatchBytes: MiB });
    const hint = c.hint('n7', [rec('a', 700 * KiB), rec('b', 700 * KiB), rec('c', 10)]);
    for (let i = 0; i < 5; i++) {
      await settle();
      t.releaseAll();
    }
    await hint;
    expect(t.requests.map((r) => (r.body['records'] as StoredRecord[]).length)).toEqual([1, 2]);
  });

  it('asks again for the keys a peer left out of a capped read answer', async () => {
    const clock = new VirtualClock();
    const asked: string[][] = [];
    const transport: InternodeTransport = async (_type, body) => {
      const { keys } = internodePackr.unpack(body) as { keys: string[] };
      asked.push(keys);
      return internodePackr.pack({ records: keys.slice(0, 2).map((k) => rec(k, 10)) });
    };
    const c = new InternodePeerClient(transport, { clock });
    const got = await c.read(['a', 'b', 'c', 'd', 'e']);
    expect(got.map((r) => r?.key)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(asked).toEqual([['a', 'b', 'c', 'd', 'e'], ['c', 'd', 'e'], ['e']]);
  });

  it('chunksOf cuts by count and bytes, a large record alone', () => {
    const keys = (chunks: StoredRecord[][]): string[][] => chunks.map((ch) => ch.map((r) => r.key));
    expect(keys(chunksOf([rec('a', 10), rec('b', 10), rec('c', 10)], 2, MiB))).toEqual([['a', 'b'], ['c']]);
    expect(keys(chunksOf([rec('a', 600 * KiB), rec('b', 600 * KiB), rec('c', 3 * MiB), rec('d', 10)], 100, MiB))).toEqual([['a'], ['b'], ['c'], ['d']]);
    expect(chunksOf([], 2, MiB)).toEqual([]);
  });
});

describe('the responder caps its answers', () => {
  it('answers a prefix of a read and a shorter scan page when the records pass maxAnswerBytes', async () => {
    const db = new MemoryLevel<string, Uint8Array>({ valueEncoding: 'view' });
    const store = await openStore({ db: db.sublevel('data') as never, nodeId: 'n1', bucketBits: 8 });
    const hints = new HintStore(hintsSublevel(db));
    await hints.open();
    const clock = new VirtualClock();
    for (const k of ['a', 'b', 'c', 'd']) await store.apply(rec(k, 400 * KiB));
    const handle = createInternodeHandler({ store, hints, clock, tombstoneGraceMs: 1000, maxAnswerBytes: MiB });
    const read = (await handle({ type: 'read', keys: ['a', 'b', 'c', 'd'] })) as { records: unknown[] };
    expect(read.records).toHaveLength(2);
    const one = (await handle({ type: 'read', keys: ['zz', 'a'] })) as { records: unknown[] };
    expect(one.records).toHaveLength(2); // a miss costs little
    const scan = (await handle({ type: 'scan', prefix: '', limit: 10 })) as { records: StoredRecord[]; more: boolean };
    expect(scan.records.map((r) => r.key)).toEqual(['a', 'b']);
    expect(scan.more).toBe(true);
    const big = createInternodeHandler({ store, hints, clock, tombstoneGraceMs: 1000, maxAnswerBytes: 100 });
    expect(((await big({ type: 'read', keys: ['a', 'b'] })) as { records: unknown[] }).records).toHaveLength(1); // at least one
    await store.close();
    await db.close();
  });
});

describe('the coordinator under more writes than its peers take', () => {
  let nodes: { node: ClusterNode; store: Store; db: MemoryLevel<string, Uint8Array> }[] = [];
  const clock = new VirtualClock();
  afterEach(async () => {
    for (const n of nodes) {
      await clock.runUntil(n.node.stop());
      await n.store.close();
      await n.db.close();
    }
    nodes = [];
  });

  async function node(id: string, ids: readonly string[], transportFactory: (m: MemberInfo) => InternodeTransport, config = {}) {
    const db = new MemoryLevel<string, Uint8Array>({ valueEncoding: 'view' });
    const store = await openStore({ db: db.sublevel('data') as never, nodeId: id, bucketBits: 10, clock });
    const membership = new StaticMembership(id, ids.map((m) => ({ id: m, state: 'alive' as const, http: `http://${m}`, gossip: '', incarnation: 0 })));
    const n = createClusterNode({ store, hintsDb: hintsSublevel(db), membership, clock, transportFactory, config: { repairPartitionIntervalMs: 0, ...config } });
    await n.start();
    nodes.push({ node: n, store, db });
    return n;
  }

  it('answers 503 BUSY, before writing anything, when fewer than W replicas have room; writes again once they drain', async () => {
    const t = heldTransport();
    const ids = ['n1', 'n2', 'n3'];
    const n1 = await node('n1', ids, () => t.transport, { peerMaxQueuedBytes: 4 * MiB, requestTimeoutMs: 60_000 });
    const service = n1.service;
    // Nothing answers: every quorum write (this node and one peer) waits, and both peers' queues fill up.
    const outcomes: unknown[] = [];
    const pending: Promise<void>[] = [];
    let i = 0;
    while (!outcomes.some((o) => o instanceof ServiceError) && i < 20) {
      pending.push(service.put(`k${i}`, new Uint8Array(MiB), { consistency: 'quorum' }).then((r) => void outcomes.push(r), (e: unknown) => void outcomes.push(e)));
      i++;
      await settle();
    }
    const busy = outcomes.find((o) => o instanceof ServiceError) as ServiceError;
    expect(busy?.code).toBe('BUSY');
    expect(busy.details).toMatchObject({ acknowledged: 0, required: 2 });
    expect(i).toBeLessThanOrEqual(6); // 4 MiB per peer: the fifth or so write finds no room
    // The refused write was not applied anywhere: this node does not hold it.
    expect(await nodes[0]!.store.getRecord(`k${i - 1}`)).toBeUndefined();
    expect(service.counters.writesShed).toBe(1);
    expect(service.metrics()).toContain('hearsay_cluster_writes_shed_total 1');
    expect(service.metrics()).toMatch(/hearsay_cluster_peer_queued_bytes\{peer="n2"\} [1-9]/);
    // The peers answer: the queues drain, the writes waiting succeed, and new writes are taken.
    for (let round = 0; round < 200 && t.held() > 0; round++) {
      t.releaseAll();
      await settle();
      await clock.advance(5);
    }
    await clock.runUntil(Promise.all(pending));
    expect(outcomes.filter((o) => !(o instanceof ServiceError))).toHaveLength(i - 1);
    const after = service.put('after', new Uint8Array(10), { consistency: 'quorum' });
    for (let round = 0; round < 20 && t.held() >= 0; round++) {
      await settle();
      t.releaseAll();
      await clock.advance(5);
      if (await Promise.race([after.then(() => true), settle().then(() => false)])) break;
    }
    expect((await after).key).toBe('after');
  });

  it('is not ok while its store cannot write', async () => {
    const ids = ['n1', 'n2'];
    const peers = new Map<string, ClusterNode>();
    const direct = (m: MemberInfo): InternodeTransport => async (type, body) =>
      internodePackr.pack(await peers.get(m.id)!.handleInternode(decodeRequest(type, internodePackr.unpack(body))));
    const n1 = await node('n1', ids, direct);
    const n2 = await node('n2', ids, direct);
    peers.set('n1', n1).set('n2', n2);
    expect((await n1.service.health()).ok).toBe(true);
    // The disk goes away under the store: its writes fail with the database's error.
    await nodes[0]!.db.close();
    const failed = await clock.runUntil(n1.service.put('k', new Uint8Array(1), { consistency: 'all' }).catch((e: unknown) => e));
    expect(failed).toBeInstanceOf(ServiceError);
    const health = await n1.service.health();
    expect(health.ok).toBe(false);
    expect(health.reason).toContain('the store cannot write');
    expect(n1.service.metrics()).toMatch(/hearsay_cluster_store_write_failures_total [1-9]/);
    // The peer that took writes for it is still fine.
    expect((await n2.service.health()).ok).toBe(true);
    nodes.shift(); // its db is closed already
    await clock.runUntil(n1.stop());
  });
});

describe('StoreWriteHealth', () => {
  it('ignores refusals, remembers a failure until a success or the window passes', async () => {
    const clock = new VirtualClock();
    const h = new StoreWriteHealth(clock);
    const { StorageError } = await import('@hearsay/storage');
    await h.observe(Promise.reject(new StorageError('BUSY', 'queue full'))).catch(() => undefined);
    await h.observe(Promise.reject(new StorageError('VALUE_TOO_LARGE', 'big'))).catch(() => undefined);
    expect(h.problem()).toBeUndefined();
    await h.observe(Promise.reject(Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' }))).catch(() => undefined);
    expect(h.problem()).toContain('No space left on device');
    expect(h.failures).toBe(1);
    await h.observe(Promise.resolve(1));
    expect(h.problem()).toBeUndefined();
    h.noteFailure(new Error('EIO'));
    await clock.advance(STORE_FAILURE_WINDOW_MS + 1);
    expect(h.problem()).toBeUndefined();
  });
});
