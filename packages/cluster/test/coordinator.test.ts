import { afterEach, describe, expect, it } from 'vitest';
import { ServiceError } from '@hearsay/service';
import { compareVersions } from '@hearsay/storage';
import { TestCluster } from './harness.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function make(n: number, config = {}): Promise<TestCluster> {
  cluster = await TestCluster.create(n, config);
  return cluster;
}

function replicasOf(c: TestCluster, key: string): readonly string[] {
  const svc = c.get('n1').node.service;
  return svc.partitionMap.preferenceList(svc.partitionOf(key));
}

async function expectServiceError(p: Promise<unknown>, code: string): Promise<ServiceError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ServiceError);
  expect((e as ServiceError).code).toBe(code);
  return e as ServiceError;
}

describe('coordinator', () => {
  it('a quorum write through one node is read at quorum through every other node', async () => {
    const c = await make(3);
    const rec = await c.run(c.get('n1').node.service.put('k', enc('v1'), { consistency: 'quorum', contentType: 'text/plain' }));
    expect(rec.version.node).toBe('n1');
    for (const id of ['n2', 'n3']) {
      const got = await c.run(c.get(id).node.service.get('k', { consistency: 'quorum' }));
      expect(dec(got?.value)).toBe('v1');
      expect(got?.contentType).toBe('text/plain');
      expect(compareVersions(got!.version, rec.version)).toBe(0);
    }
  });

  it('stores a key exactly on the replicas of its partition', async () => {
    const c = await make(5);
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    for (const k of keys) await c.run(c.get('n3').node.service.put(k, enc(k), { consistency: 'all' }));
    for (const k of keys) {
      const replicas = new Set(replicasOf(c, k));
      expect(replicas.size).toBe(3);
      for (const t of c.nodes.values()) {
        const r = await t.store.getRecord(k);
        expect(r !== undefined, `${k} on ${t.id}`).toBe(replicas.has(t.id));
      }
    }
  });

  it('acknowledges after W replicas and answers 503 with how many acknowledged otherwise', async () => {
    const c = await make(3);
    c.get('n3').up = false; // crashed, but membership has not noticed yet
    await c.run(c.get('n1').node.service.put('a', enc('1'), { consistency: 'quorum' }));
    await c.run(c.get('n1').node.service.put('b', enc('1'), { consistency: 'one' }));
    const e = await expectServiceError(c.run(c.get('n1').node.service.put('c', enc('1'), { consistency: 'all' })), 'INSUFFICIENT_REPLICAS');
    expect(e.details).toEqual({ acknowledged: 2, required: 3 });
    expect(e.status).toBe(503);
    c.get('n2').up = false;
    const e2 = await expectServiceError(c.run(c.get('n1').node.service.get('a', { consistency: 'quorum' })), 'INSUFFICIENT_REPLICAS');
    expect(e2.details).toEqual({ acknowledged: 1, required: 2 });
    expect(dec((await c.run(c.get('n1').node.service.get('a', { consistency: 'one' })))?.value)).toBe('1');
  });

  it('answers TIMEOUT when replicas do not answer within the request timeout', async () => {
    const c = await make(3, { requestTimeoutMs: 500, peerTimeoutMs: 60_000 });
    // n2 and n3 hang: their handlers never resolve.
    for (const id of ['n2', 'n3']) {
      (c.get(id).node as { handleInternode: unknown }).handleInternode = () => new Promise(() => undefined);
    }
    const started = c.clock.now();
    const e = await expectServiceError(c.run(c.get('n1').node.service.put('k', enc('v'), { consistency: 'quorum' })), 'TIMEOUT');
    expect(e.details['acknowledged']).toBe(1);
    expect(c.clock.now() - started).toBe(500);
  });

  it('answers a read once R replicas answered, without waiting for a slow third one', async () => {
    const c = await make(3, { requestTimeoutMs: 500, peerTimeoutMs: 60_000 });
    await c.run(c.get('n1').node.service.put('k', enc('v'), { consistency: 'all' }));
    (c.get('n3').node as { handleInternode: unknown }).handleInternode = () => new Promise(() => undefined);
    for (const consistency of ['one', 'quorum'] as const) {
      const started = c.clock.now();
      const r = await c.run(c.get('n1').node.service.get('k', { consistency }));
      expect(dec(r?.value)).toBe('v');
      expect(c.clock.now() - started).toBe(0);
    }
  });

  it('later writes win by version, whichever node coordinates them', async () => {
    const c = await make(3);
    await c.run(c.get('n1').node.service.put('k', enc('first'), { consistency: 'quorum' }));
    await c.clock.advance(5);
    await c.run(c.get('n2').node.service.put('k', enc('second'), { consistency: 'quorum' }));
    for (const id of ['n1', 'n2', 'n3']) {
      expect(dec((await c.run(c.get(id).node.service.get('k', { consistency: 'quorum' })))?.value)).toBe('second');
    }
  });

  it('stamps above versions its store has seen, even from a clock ahead of its own within the max offset (apply observes them)', async () => {
    const c = await make(3);
    const ahead = { ms: c.clock.now() + 400, counter: 0, node: 'n9' };
    // A record from a node whose clock runs 400 ms ahead (the max offset is 500 ms), on every replica.
    for (const t of c.nodes.values()) await t.store.apply({ key: 'k', value: enc('from-the-future'), version: ahead, tombstone: false });
    const mine = await c.run(c.get('n1').node.service.put('k', enc('now'), { consistency: 'all' }));
    expect(compareVersions(mine.version, ahead)).toBe(1);
    expect(dec((await c.run(c.get('n2').node.service.get('k', { consistency: 'all' })))?.value)).toBe('now');
  });

  it('deletes write tombstones and a deleted key reads as missing', async () => {
    const c = await make(3);
    await c.run(c.get('n1').node.service.put('k', enc('v'), { consistency: 'all' }));
    const t = await c.run(c.get('n2').node.service.delete('k', { consistency: 'all' }));
    expect(t.tombstone).toBe(true);
    expect(await c.run(c.get('n3').node.service.get('k', { consistency: 'quorum' }))).toBeUndefined();
    for (const n of c.nodes.values()) expect((await n.store.getRecord('k'))?.tombstone).toBe(true);
  });

  it('read-repairs stale replicas in the background', async () => {
    const c = await make(3);
    const svc = c.get('n1').node.service;
    const rec = await c.run(svc.put('k', enc('new'), { consistency: 'one' }));
    // Make n2 stale and n3 empty by hand: only n1 holds the record now.
    const old = { ...rec, value: enc('old'), version: { ...rec.version, ms: rec.version.ms - 10 } };
    await c.get('n2').store.purgeTombstones({ beforeMs: 0 }); // no-op, exercises the API
    await c.get('n2').db.sublevel('data').clear();
    await c.crash('n2');
    await c.restart('n2');
    await c.get('n2').store.apply(old);
    await c.get('n3').db.sublevel('data').clear();
    await c.crash('n3');
    await c.restart('n3');
    // Everyone applied the write at first (consistency one still sends to all); we reset n2, n3 above.
    const got = await c.run(c.get('n2').node.service.get('k', { consistency: 'all' }));
    expect(dec(got?.value)).toBe('new');
    await c.run(c.get('n2').node.service.settled());
    for (const id of ['n1', 'n2', 'n3']) expect(dec((await c.get(id).store.getRecord('k'))?.value)).toBe('new');
    expect(c.get('n2').node.service.counters.readRepairs).toBe(2);
  });
});

describe('readiness', () => {
  it('refuses requests and reports unhealthy until the node has found the cluster', async () => {
    const c = await make(3);
    const m = c.get('n1').membership as unknown as { ready?: () => boolean };
    let ready = false;
    m.ready = () => ready;
    const svc = c.get('n1').node.service;
    await expectServiceError(c.run(svc.put('k', enc('v'), { consistency: 'one' })), 'UNAVAILABLE');
    expect((await svc.health()).ok).toBe(false);
    ready = true;
    await c.run(svc.put('k', enc('v'), { consistency: 'one' }));
    expect((await svc.health()).ok).toBe(true);
  });
});

describe('conditional writes', () => {
  it('If-None-Match: * creates only', async () => {
    const c = await make(3);
    const svc = c.get('n1').node.service;
    await c.run(svc.put('k', enc('a'), { consistency: 'quorum', ifNoneMatch: '*' }));
    await expectServiceError(c.run(svc.put('k', enc('b'), { consistency: 'quorum', ifNoneMatch: '*' })), 'PRECONDITION_FAILED');
    await c.run(svc.delete('k', { consistency: 'quorum' }));
    await c.run(svc.put('k', enc('c'), { consistency: 'quorum', ifNoneMatch: '*' }));
    expect(dec((await c.run(svc.get('k', { consistency: 'quorum' })))?.value)).toBe('c');
  });

  it('If-Match writes only over that live version, and the new version is above it', async () => {
    const c = await make(3);
    const a = await c.run(c.get('n1').node.service.put('k', enc('a'), { consistency: 'quorum' }));
    const svc2 = c.get('n2').node.service;
    const b = await c.run(svc2.put('k', enc('b'), { consistency: 'quorum', ifMatch: a.version }));
    expect(compareVersions(b.version, a.version)).toBe(1);
    await expectServiceError(c.run(svc2.put('k', enc('c'), { consistency: 'quorum', ifMatch: a.version })), 'PRECONDITION_FAILED');
    await c.run(svc2.put('k', enc('d'), { consistency: 'quorum', ifMatch: '*' }));
    await expectServiceError(c.run(svc2.put('missing', enc('x'), { consistency: 'quorum', ifMatch: '*' })), 'PRECONDITION_FAILED');
    const gone = await c.run(svc2.delete('k', { consistency: 'quorum', ifMatch: '*' }));
    await expectServiceError(c.run(svc2.delete('k', { consistency: 'quorum', ifMatch: gone.version })), 'PRECONDITION_FAILED');
  });

  it('needs a quorum for the precondition read even at consistency one', async () => {
    const c = await make(3);
    c.get('n2').up = false;
    c.get('n3').up = false;
    await c.run(c.get('n1').node.service.put('k', enc('a'), { consistency: 'one' }));
    await expectServiceError(
      c.run(c.get('n1').node.service.put('k', enc('b'), { consistency: 'one', ifMatch: '*' })),
      'INSUFFICIENT_REPLICAS',
    );
  });
});

describe('listing', () => {
  it('merges every member, hides tombstones, and pages with a cursor', async () => {
    const c = await make(5);
    const svc = c.get('n1').node.service;
    const keys = Array.from({ length: 30 }, (_, i) => `p/${String(i).padStart(2, '0')}`);
    for (const k of keys) await c.run(svc.put(k, enc(k), { consistency: 'quorum' }));
    await c.run(svc.put('other', enc('x'), { consistency: 'quorum' }));
    for (const k of keys.filter((_, i) => i % 3 === 0)) await c.run(svc.delete(k, { consistency: 'quorum' }));
    const expected = keys.filter((_, i) => i % 3 !== 0);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await c.run(
        c.get('n4').node.service.list({ prefix: 'p/', limit: 4, consistency: 'quorum', ...(cursor === undefined ? {} : { cursor }) }),
      );
      expect(res.items.length).toBeLessThanOrEqual(4);
      seen.push(...res.items.map((i) => i.key));
      if (res.next === null) break;
      cursor = res.next;
    }
    expect(seen).toEqual(expected);
    await expectServiceError(c.run(svc.list({ prefix: '', limit: 4, consistency: 'quorum', cursor: '!!' })), 'INVALID_CURSOR');
  });
});

describe('members', () => {
  it('lists members with their state and the partitions each owns', async () => {
    const c = await make(4);
    c.setState('n4', 'dead');
    const view = await c.get('n1').node.service.cluster();
    expect(view.self).toBe('n1');
    expect(view.members.map((m) => [m.id, m.state])).toEqual([
      ['n1', 'alive'],
      ['n2', 'alive'],
      ['n3', 'alive'],
      ['n4', 'dead'],
    ]);
    const total = view.members.reduce((s, m) => s + (m['partitions'] as number[]).length, 0);
    expect(total).toBe(256 * 3);
  });
});
