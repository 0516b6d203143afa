import { afterEach, describe, expect, it } from 'vitest';
import type { RepairLine } from '@hearsay/service';
import { countMovedReplicas } from '../src/partition-map.ts';
import { purgeCutoffMs } from '../src/tombstone-purge.ts';
import { TestCluster } from './harness.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (r: { value: Uint8Array } | undefined): string | undefined => (r === undefined ? undefined : new TextDecoder().decode(r.value));

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function collect(c: TestCluster, it: AsyncIterable<RepairLine>): Promise<RepairLine[]> {
  return c.run(
    (async () => {
      const out: RepairLine[] = [];
      for await (const l of it) out.push(l);
      return out;
    })(),
  );
}

async function digests(c: TestCluster, id: string): Promise<string> {
  const s = c.get(id).store;
  const d = await s.bucketDigests(0, 2 ** s.bucketBits);
  return Buffer.concat(d).toString('hex');
}

describe('repair now (POST /v1/repair)', () => {
  it('brings a replica that missed writes and deletes back in sync, with progress and a summary', async () => {
    const c = (cluster = await TestCluster.create(3, { handoffIntervalMs: 10_000_000 }));
    const svc = c.get('n1').node.service;
    await c.crash('n3');
    for (let i = 0; i < 30; i++) await c.run(svc.put(`k${i}`, enc(`v${i}`), { consistency: 'quorum' }));
    for (let i = 0; i < 10; i++) await c.run(svc.delete(`k${i}`, { consistency: 'quorum' }));
    await c.restart('n3');
    const lines = await collect(c, c.get('n3').node.service.repair({}));
    const summary = lines.at(-1)!;
    expect(summary.type).toBe('summary');
    expect(lines.slice(0, -1).every((l) => l.type === 'progress')).toBe(true);
    expect(lines.length - 1).toBe(256); // RF = N: n3 replicates every partition
    expect(summary).toMatchObject({ inSync: true, keysReceived: 30, keysSent: 0 });
    expect(summary.rangesCompared).toBe(512); // 256 partitions x 2 other replicas
    expect(summary.bytesSent).toBeGreaterThan(0);
    const d1 = await digests(c, 'n1');
    expect(await digests(c, 'n2')).toBe(d1);
    expect(await digests(c, 'n3')).toBe(d1);
    // A second run finds nothing to do.
    const again = (await collect(c, c.get('n3').node.service.repair({}))).at(-1)!;
    expect(again).toMatchObject({ inSync: true, keysReceived: 0, keysSent: 0 });
  });

  it('refuses a second repair while one runs (CONFLICT)', async () => {
    const c = (cluster = await TestCluster.create(3));
    const svc = c.get('n1').node.service;
    const first = svc.repair({})[Symbol.asyncIterator]();
    const firstLine = c.run(first.next());
    await expect(c.run(svc.repair({})[Symbol.asyncIterator]().next())).rejects.toMatchObject({ code: 'CONFLICT', status: 409 });
    expect((await firstLine).done).toBe(false);
    await c.run((async () => { while (!(await first.next()).done); })());
    // Done: a new one may start.
    expect((await c.run(svc.repair({})[Symbol.asyncIterator]().next())).done).toBe(false);
  });

  it('reports inSync false when a replica cannot be reached', async () => {
    const c = (cluster = await TestCluster.create(3));
    await c.crash('n2');
    c.setState('n2', 'dead');
    const summary = (await collect(c, c.get('n1').node.service.repair({}))).at(-1)!;
    expect(summary.inSync).toBe(false);
    expect(summary.message).toContain('n2');
  });
});

describe('membership changes', () => {
  it('a joining member takes over a share of the partitions and repair fills them', async () => {
    const c = (cluster = await TestCluster.create(3));
    const svc = c.get('n1').node.service;
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    for (const k of keys) await c.run(svc.put(k, enc(k), { consistency: 'all' }));
    const before = svc.partitionMap;
    await c.join('n4');
    const after = svc.partitionMap;
    expect(after.members).toEqual(['n1', 'n2', 'n3', 'n4']);
    const taken = after.partitionsOf('n4');
    expect(taken.length).toBeGreaterThan(100);
    expect(countMovedReplicas(before, after)).toBe(taken.length);
    const moved = keys.filter((k) => after.preferenceList(svc.partitionOf(k)).includes('n4'));
    expect(moved.length).toBeGreaterThan(0);
    // Before repair the new owner has nothing: what docs/operations.md warns about.
    for (const k of moved) expect(await c.get('n4').store.getRecord(k)).toBeUndefined();
    const summary = (await collect(c, c.get('n4').node.service.repair({}))).at(-1)!;
    expect(summary).toMatchObject({ inSync: true, keysReceived: moved.length });
    for (const k of moved) expect(await c.get('n4').store.getRecord(k)).toBeDefined();
    // New writes go to the new owners at once.
    const k = moved[0]!;
    await c.run(c.get('n2').node.service.put(k, enc('new'), { consistency: 'all' }));
    expect(new TextDecoder().decode((await c.get('n4').store.getRecord(k))?.value)).toBe('new');
  });
});

describe('foreign data', () => {
  it('a node pushes what it holds for partitions it does not replicate to their replicas, once', async () => {
    const c = (cluster = await TestCluster.create(4));
    const svc = c.get('n1').node.service;
    // A key n1 does not replicate, written onto n1 as a node with a partial view would.
    const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => !svc.partitionMap.preferenceList(svc.partitionOf(k)).includes('n1'))!;
    const replicas = svc.partitionMap.preferenceList(svc.partitionOf(key));
    await c.get('n1').store.apply({ key, value: enc('orphan'), version: c.get('n1').store.now(), tombstone: false });
    const first = (await collect(c, svc.repair({}))).at(-1)!;
    expect(first).toMatchObject({ inSync: true, foreignPartitions: 1, foreignKeysSent: 3 });
    for (const id of replicas) expect(new TextDecoder().decode((await c.get(id).store.getRecord(key))?.value)).toBe('orphan');
    expect(dec(await c.run(c.get('n2').node.service.get(key, { consistency: 'all' })))).toBe('orphan');
    const second = (await collect(c, svc.repair({}))).at(-1)!;
    expect(second).toMatchObject({ foreignPartitions: 1, foreignKeysSent: 0 });
  });
});

describe('tombstone purge', () => {
  it('purges only after the grace period and a repair with every replica', async () => {
    const graceMs = 60_000;
    const c = (cluster = await TestCluster.create(3, { tombstoneGraceMs: graceMs, hintWindowMs: graceMs }));
    const svc = c.get('n1').node.service;
    for (let i = 0; i < 10; i++) await c.run(svc.put(`k${i}`, enc('v'), { consistency: 'all' }));
    for (let i = 0; i < 5; i++) await c.run(svc.delete(`k${i}`, { consistency: 'all' }));
    const tombstones = (id: string) => c.get(id).store.stats().tombstones;
    expect(tombstones('n1')).toBe(5);

    // Repaired with everyone, but within the grace period: nothing goes.
    await collect(c, svc.repair({}));
    expect(tombstones('n1')).toBe(5);

    await c.clock.advance(graceMs + 1000);
    // Past the grace period, but n3 is unreachable: the repair does not cover it, nothing goes.
    await c.crash('n3');
    c.setState('n3', 'dead');
    const partial = (await collect(c, c.get('n2').node.service.repair({}))).at(-1)!;
    expect(partial.inSync).toBe(false);
    expect(tombstones('n2')).toBe(5);

    // Everyone back: a complete round purges on every replica at once.
    await c.restart('n3');
    c.setState('n3', 'alive');
    for (const id of ['n1', 'n2', 'n3']) await collect(c, c.get(id).node.service.repair({}));
    for (const id of ['n1', 'n2', 'n3']) expect(tombstones(id)).toBe(0);
    for (let i = 0; i < 5; i++) expect(await c.run(svc.get(`k${i}`, { consistency: 'all' }))).toBeUndefined();
    for (let i = 5; i < 10; i++) expect(await c.run(svc.get(`k${i}`, { consistency: 'all' }))).toBeDefined();
  });

  it.each([
    { name: 'grace binds', round: 9000, sessions: [9500, 9800], now: 10_000, grace: 500, cutoff: 9000 },
    { name: 'round start binds', round: 9000, sessions: [9500, 9800], now: 10_000, grace: 100, cutoff: 9000 },
    { name: 'a session cut-off binds', round: 9000, sessions: [5000, 9800], now: 10_000, grace: 100, cutoff: 5000 },
    { name: 'grace binds over all', round: 9900, sessions: [9950], now: 10_000, grace: 1000, cutoff: 9000 },
    { name: 'young cluster', round: 100, sessions: [100], now: 500, grace: 1000, cutoff: undefined },
    { name: 'fractional times floor', round: 9000.7, sessions: [9000.5], now: 10_000, grace: 0, cutoff: 9000 },
  ])('purge cut-off: $name', ({ round, sessions, now, grace, cutoff }) => {
    expect(purgeCutoffMs({ roundStartMs: round, sessionCutoffsMs: sessions, nowMs: now, graceMs: grace })).toBe(cutoff);
  });
});
