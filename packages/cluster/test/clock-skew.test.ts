/**
 * Clock skew must never lose an acknowledged write (issue 13), in one process:
 *
 * - writes that lose say so: a replica holding a higher version (a clock
 *   ahead, within the offset) makes the coordinator stamp again past it, so
 *   the later write wins — or the client gets an error, never a 204 for a
 *   write that changed nothing; the same for deletes and conditional writes;
 * - a node whose clock is beyond the maximum offset against the members it
 *   reaches is fenced: 503 CLOCK_SKEW with the offset, said in health and
 *   /v1/cluster, counted in /metrics, and it resumes by itself;
 * - a record more than the maximum offset ahead is refused on every path
 *   into a store: a client write, an internode write, a hint, read repair
 *   and a repair session.
 */
import { MemoryLevel } from 'memory-level';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceError } from '@hearsay/service';
import { compareVersions, openStore, type StoredRecord, type Version } from '@hearsay/storage';
import { Coordinator } from '../src/coordinator.ts';
import { MAX_RESTAMPS } from '../src/replica-write.ts';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { StaticMembership, type MemberInfo } from '../src/membership.ts';
import type { PeerClient, ReplicaOutcome } from '../src/peer.ts';
import { TestCluster } from './harness.ts';
import { VirtualClock } from './virtual-clock.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));
const HOUR = 3_600_000;

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function errorOf(p: Promise<unknown>): Promise<ServiceError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ServiceError);
  return e as ServiceError;
}

describe('writes that lose say so (clocks within the offset)', () => {
  it('a later write through a node whose clock is behind is stamped again past the version a replica holds, and wins', async () => {
    cluster = await TestCluster.create(5, {}, { skewMs: { n2: 300 } });
    const c = cluster;
    // A key n1 does not replicate (so its clock has not seen what n2 wrote) and n2 does.
    const map = c.get('n1').node.service.partitionMap;
    const k = Array.from({ length: 500 }, (_, i) => `key-${i}`).find((key) => {
      const prefs = map.preferenceList(c.get('n1').node.service.partitionOf(key));
      return prefs.includes('n2') && !prefs.includes('n1');
    })!;
    const first = await c.run(c.get('n2').node.service.put(k, enc('first'), { consistency: 'quorum' }));
    expect(first.version.ms).toBe(c.clock.now() + 300);
    // n1's clock is 300 ms behind n2's: it stamps below `first`, a replica says so, it stamps again.
    const second = await c.run(c.get('n1').node.service.put(k, enc('second'), { consistency: 'quorum' }));
    expect(compareVersions(second.version, first.version)).toBe(1);
    expect(second.version.node).toBe('n1');
    expect(c.get('n1').node.service.counters.writesRestamped).toBe(1);
    expect(dec((await c.run(c.get('n3').node.service.get(k, { consistency: 'all' })))?.value)).toBe('second');

    // The same for a delete.
    const third = await c.run(c.get('n2').node.service.put(k, enc('third'), { consistency: 'all' }));
    const deleted = await c.run(c.get('n1').node.service.delete(k, { consistency: 'quorum' }));
    expect(compareVersions(deleted.version, third.version)).toBe(1);
    expect(await c.run(c.get('n3').node.service.get(k, { consistency: 'all' }))).toBeUndefined();
    expect(c.get('n1').node.service.counters.writesRestamped).toBe(2);
    // The ETag the client got is the version that is stored.
    for (const id of map.preferenceList(c.get('n1').node.service.partitionOf(k))) {
      expect((await c.get(id).store.getRecord(k))?.version).toEqual(deleted.version);
    }
  });

  it('a conditional write checked against the version a replica then answers with is stamped past it (If-Match of that version)', async () => {
    cluster = await TestCluster.create(3, {}, { skewMs: { n2: 300 } });
    const c = cluster;
    const first = await c.run(c.get('n2').node.service.put('k', enc('first'), { consistency: 'all' }));
    const second = await c.run(c.get('n1').node.service.put('k', enc('second'), { consistency: 'quorum', ifMatch: first.version }));
    expect(compareVersions(second.version, first.version)).toBe(1);
    expect(dec((await c.run(c.get('n3').node.service.get('k', { consistency: 'all' })))?.value)).toBe('second');
  });
});

describe('writes that lose: the coordinator against replicas that hold a higher version', () => {
  const T = 1_700_000_000_000;
  const member = (id: string): MemberInfo => ({ id, state: 'alive', http: `http://${id}`, gossip: '', incarnation: 0 });

  /**
   * A coordinator n1 whose two peers answer reads with `read` and every write
   * with `answer(record)`: what a replica holding a higher version says.
   */
  async function coordinatorWith(read: StoredRecord | undefined, answer: (r: StoredRecord) => ReplicaOutcome) {
    const clock = new VirtualClock(T);
    const db = new MemoryLevel<string, Uint8Array>({ valueEncoding: 'view' });
    const store = await openStore({ db: db.sublevel('data') as never, nodeId: 'n1', bucketBits: 10, clock });
    const hints = new HintStore(hintsSublevel(db));
    await hints.open();
    const peer: PeerClient = {
      write: async (records) => records.map(answer),
      read: async (keys) => keys.map(() => read),
      hint: async () => undefined,
      scan: async () => ({ records: [], more: false }),
      repair: async () => undefined,
      purge: async () => 0,
      ring: () => Promise.reject(new Error('no ownership table in this test')),
      stream: () => Promise.reject(new Error('no streaming in this test')),
    };
    const coordinator = new Coordinator({
      store,
      membership: new StaticMembership('n1', [member('n1'), member('n2'), member('n3')]),
      peers: () => peer,
      hints,
      clock,
      config: { replicationFactor: 3, readRepair: false },
    });
    const close = async (): Promise<void> => {
      await coordinator.stop();
      await store.close();
      await db.close();
    };
    return { coordinator, store, clock, close };
  }

  const held = (version: Version, tombstone = false): ReplicaOutcome => ({ held: version, tombstone });
  const v = (ms: number, node = 'n2'): Version => ({ ms, counter: 0, node });
  const live = (version: Version): StoredRecord => ({ key: 'k', value: enc('x'), version, tombstone: false });

  it.each([
    ['If-Match: * over a live record', { ifMatch: '*' as const }, false, 'written'],
    ['If-Match: * over a tombstone', { ifMatch: '*' as const }, true, 'PRECONDITION_FAILED'],
    ['If-None-Match: * over a tombstone', { ifNoneMatch: '*' as const }, true, 'written'],
    ['If-None-Match: * over a live record', { ifNoneMatch: '*' as const }, false, 'PRECONDITION_FAILED'],
    ['If-Match of the version the read saw, over a newer one', { ifMatch: v(T - 1000) }, false, 'PRECONDITION_FAILED'],
  ])('%s: %s', async (_name, precondition, tombstone, expected) => {
    const newer = v(T + 200);
    // The precondition read saw the record the If-Match names (or nothing); the replicas then hold `newer`.
    const readSees = 'ifMatch' in precondition && precondition.ifMatch !== '*' ? live(precondition.ifMatch) : 'ifMatch' in precondition ? live(v(T - 5)) : undefined;
    const { coordinator, close } = await coordinatorWith(readSees, (r) => (compareVersions(r.version, newer) > 0 ? null : held(newer, tombstone)));
    try {
      const result = await coordinator.put('k', enc('mine'), { consistency: 'quorum', ...precondition }).then(
        (r) => (compareVersions(r.version, newer) > 0 ? 'written' : 'stale'),
        (e: unknown) => (e as ServiceError).code,
      );
      expect(result).toBe(expected);
      expect(coordinator.counters.writesRestamped).toBe(expected === 'written' ? 1 : 0);
    } finally {
      await close();
    }
  });

  it(`gives up with 409 CONFLICT when concurrent writes keep winning (${MAX_RESTAMPS + 1} attempts), never a 204`, async () => {
    // Every write meets a version just above it, as if another writer always got there first.
    const { coordinator, close } = await coordinatorWith(undefined, (r) => held({ ms: r.version.ms, counter: r.version.counter + 1, node: 'n9' }));
    try {
      const e = await errorOf(coordinator.put('k', enc('mine'), { consistency: 'quorum' }));
      expect(e.code).toBe('CONFLICT');
      expect(coordinator.counters.writesRestamped).toBe(MAX_RESTAMPS);
    } finally {
      await close();
    }
  });

  it('answers 503 CLOCK_SKEW when the version a replica holds is too far ahead to stamp past', async () => {
    const { coordinator, store, close } = await coordinatorWith(undefined, () => held(v(T + HOUR)));
    try {
      const e = await errorOf(coordinator.delete('k', { consistency: 'quorum' }));
      expect(e.code).toBe('CLOCK_SKEW');
      expect(e.details).toMatchObject({ offsetMs: HOUR, maxOffsetMs: 500 });
      expect(store.clockStatus().versionsRefused).toBe(1);
    } finally {
      await close();
    }
  });

  it('says so when replicas refused the version as too far ahead of their clocks', async () => {
    const { coordinator, close } = await coordinatorWith(undefined, () => ({ aheadMs: 900 }));
    try {
      const e = await errorOf(coordinator.put('k', enc('x'), { consistency: 'quorum' }));
      expect(e.code).toBe('INSUFFICIENT_REPLICAS');
      expect(e.message).toBe('2 of 3 replicas required, 1 acknowledged; 2 refused its version as 900 ms ahead of their clocks (clock skew)');
      expect(coordinator.counters.replicaClockRefusals).toBe(2);
    } finally {
      await close();
    }
  });
});

describe('a node beyond the maximum offset is fenced, visibly, and resumes by itself', () => {
  it('refuses writes with 503 CLOCK_SKEW and the offset, says so in health, /v1/cluster and /metrics; reads go on', async () => {
    cluster = await TestCluster.create(5, {}, { measureOffsets: true });
    const c = cluster;
    await c.run(c.get('n1').node.service.put('k', enc('before'), { consistency: 'all' }));
    const skewed = c.get('n3');
    skewed.skewMs = HOUR;
    const svc = skewed.node.service;
    // Its wall clock jumped: what was measured before no longer counts, so it is not verified until measured again.
    const unverified = await errorOf(c.run(svc.put('k', enc('skewed'), { consistency: 'one' })));
    expect(unverified.code).toBe('UNAVAILABLE');
    expect(unverified.message).toMatch(/^clock offset not verified: of the 4 other members this node can reach, 0 measured within/);
    await c.clock.advance(100); // past the verdict's cache, and measured again
    const e = await errorOf(c.run(svc.put('k', enc('skewed'), { consistency: 'one' })));
    expect(e.code).toBe('CLOCK_SKEW');
    expect(e.details).toMatchObject({ clockState: 'skewed', offsetMs: HOUR, maxOffsetMs: 500 });
    expect(e.message).toMatch(/^clock skew: this node's clock is 3600000 ms \(±1 ms\) ahead of 4 of the 4 other members it can reach/);
    expect((await errorOf(c.run(svc.delete('k', { consistency: 'quorum' })))).code).toBe('CLOCK_SKEW');
    // Nothing was stamped: every replica still holds the write from before.
    for (const t of c.nodes.values()) {
      const r = await t.store.getRecord('k');
      if (r !== undefined) expect(dec(r.value)).toBe('before');
    }
    expect(dec((await c.run(svc.get('k', { consistency: 'quorum' })))?.value)).toBe('before');

    const health = await svc.health();
    expect(health).toMatchObject({ ok: false, clock: { state: 'skewed', offsetMs: HOUR, beyond: 4, maxOffsetMs: 500 } });
    expect(health.reason).toMatch(/^clock skew: /);
    // Every other node sees it an hour ahead; its own entry carries its verdict.
    const view = await c.get('n1').node.service.cluster();
    expect(view.members.find((m) => m.id === 'n3')).toMatchObject({ clockOffsetMs: HOUR, clockErrorMs: 1 });
    expect(view.members.find((m) => m.id === 'n1')).toMatchObject({ clock: { state: 'ok', within: 3, beyond: 1 } });
    expect((await svc.cluster()).members.find((m) => m.id === 'n3')).toMatchObject({ clock: { state: 'skewed' } });
    const metrics = svc.metrics();
    expect(metrics).toContain('hearsay_cluster_clock_state{state="skewed"} 1');
    expect(metrics).toContain('hearsay_cluster_clock_offset_seconds{member="n1"} -3600');
    expect(metrics).toContain('hearsay_cluster_clock_writes_refused_total{state="skewed"} 2');
    expect(metrics).toContain('hearsay_cluster_clock_writes_refused_total{state="unverified"} 1');
    expect(metrics).toContain('hearsay_cluster_clock_jumps_total 1');
    expect(c.get('n1').node.service.metrics()).toContain('hearsay_cluster_clock_offset_seconds{member="n3"} 3600');

    // Fixed (the clock stepped back): once measured again it writes by itself.
    skewed.skewMs = 0;
    // The step back is a jump too: noticed (here by a health check), then measured again.
    expect(await svc.health()).toMatchObject({ ok: false, clock: { state: 'unverified' } });
    await c.clock.advance(100); // past the verdict's cache, and measured again
    const after = await c.run(svc.put('k', enc('after'), { consistency: 'quorum' }));
    expect(after.version.ms).toBe(c.clock.now());
    expect((await svc.health()).ok).toBe(true);
  });

  it('a node that restarts on a high-water mark from a clock that was ahead stamps nothing until its wall clock catches up', async () => {
    cluster = await TestCluster.create(3, {}, { measureOffsets: true, skewMs: { n3: HOUR } });
    const c = cluster;
    const n3 = c.get('n3');
    // Opening the store under the skewed clock persisted a high-water mark an hour ahead.
    await c.crash('n3');
    n3.skewMs = 0;
    await expect(c.restart('n3')).rejects.toMatchObject({ code: 'CLOCK_AHEAD' });
    await c.restart('n3', { acceptClockAhead: true });
    const e = await errorOf(c.run(n3.node.service.put('k', enc('x'), { consistency: 'one' })));
    expect(e.code).toBe('CLOCK_SKEW');
    expect(e.details).toMatchObject({ clockState: 'ahead' });
    expect(await n3.node.service.health()).toMatchObject({ ok: false, clock: { state: 'ahead' } });
    // It still takes replicated writes and answers reads meanwhile.
    await c.run(c.get('n1').node.service.put('k', enc('y'), { consistency: 'all' }));
    expect(dec((await n3.store.getRecord('k'))?.value)).toBe('y');
  });
});

describe('a record more than the maximum offset ahead is refused on every path into a store', () => {
  it('client write, internode write, hint, read repair and repair session', async () => {
    // n4's clock runs an hour ahead, and nothing measures offsets here: nothing fences it, so its stamps go out.
    cluster = await TestCluster.create(4, {}, { skewMs: { n4: HOUR } });
    const c = cluster;
    const svc = (id: string) => c.get(id).node.service;
    const refusedBy = (id: string): number => c.get(id).store.clockStatus().versionsRefused;
    const key = Array.from({ length: 200 }, (_, i) => `k${i}`).find((k) => {
      const prefs = svc('n1').partitionMap.preferenceList(svc('n1').partitionOf(k));
      return prefs.includes('n4') && prefs[0] !== 'n4';
    })!;
    const prefs = svc('n1').partitionMap.preferenceList(svc('n1').partitionOf(key));
    const others = prefs.filter((id) => id !== 'n4');
    const standIn = ['n1', 'n2', 'n3', 'n4'].find((id) => !prefs.includes(id))!;

    // Internode write: n4 coordinates, stamps an hour ahead; the other replicas refuse the record and say so.
    const e = await errorOf(c.run(svc('n4').put(key, enc('future'), { consistency: 'quorum' })));
    expect(e.code).toBe('INSUFFICIENT_REPLICAS');
    expect(e.message).toMatch(/2 refused its version as 36000\d\d ms ahead of their clocks \(clock skew\)/);
    for (const id of others) {
      expect(await c.get(id).store.getRecord(key)).toBeUndefined();
      expect(refusedBy(id)).toBe(1);
    }
    await c.run(svc('n4').settled());

    // Hint: the refused records became hints on n4; delivered, they are refused again and kept.
    expect(c.get('n4').node.hints.count()).toBe(2);
    await c.run(c.get('n4').node.handoff.runOnce());
    expect(c.get('n4').node.handoff.refusedForClock).toBe(2);
    expect(c.get('n4').node.hints.count()).toBe(2);
    for (const id of others) expect(refusedBy(id)).toBe(2);
    // A hint handed to a stand-in is refused there too: n4 sees one replica down and writes at `one`.
    c.get('n4').membership.setState(others[1]!, 'dead');
    await c.run(svc('n4').put(key, enc('future-2'), { consistency: 'one' }));
    await c.run(svc('n4').settled());
    expect(c.get(standIn).node.hints.count()).toBe(0);
    expect(c.get(standIn).node.hints.stats().refusedClock).toBe(1);
    expect(c.errors.some((m) => m.startsWith('n4:') && /refused hints whose versions are up to 36000\d\d ms ahead of its clock/.test(m))).toBe(true);
    c.get('n4').membership.setState(others[1]!, 'alive');

    // Read repair: a read through a correct node sees n4's record as the newest and writes it back; the others refuse it.
    const before = others.map(refusedBy);
    const read = await c.run(svc(others[0]!).get(key, { consistency: 'all' }));
    expect(dec(read?.value)).toBe('future-2');
    await c.run(svc(others[0]!).settled());
    expect(svc(others[0]!).counters.readRepairs).toBeGreaterThan(0);
    expect(svc(others[0]!).counters.replicaClockRefusals).toBeGreaterThan(0);
    others.forEach((id, i) => expect(refusedBy(id)).toBeGreaterThan(before[i]!));
    for (const id of others) expect(await c.get(id).store.getRecord(key)).toBeUndefined();

    // Repair session: the record is refused, counted, and the partition reported not in sync.
    const lines: { type: string; inSync?: boolean }[] = [];
    await c.run(
      (async () => {
        for await (const l of svc(others[0]!).repair({})) lines.push(l);
      })(),
    );
    expect(lines.at(-1)).toMatchObject({ type: 'summary', inSync: false });
    expect(c.errors.some((m) => /records refused: versions more than the maximum clock offset ahead/.test(m))).toBe(true);
    for (const id of others) expect(await c.get(id).store.getRecord(key)).toBeUndefined();

    // Client write: through a correct node, a write to the key n4 holds an hour ahead cannot win there, and says so.
    const e3 = await errorOf(c.run(svc(others[0]!).put(key, enc('now'), { consistency: 'all' })));
    expect(e3.code).toBe('CLOCK_SKEW');
    expect(e3.message).toMatch(/a replica holds a version of this key 36000\d\d ms ahead of this node's clock/);
  });
});
