/**
 * The coordinator's single-replica fast path (`singleReplicaFastPath`): a key
 * whose only replica is this node is served from the local store directly.
 * These tests run the same requests through a coordinator with the fast path
 * and one without it and demand the same answers, errors, versions, counters
 * and stored data; and check that the general path takes over per request
 * once another member owns the key.
 */
import fc from 'fast-check';
import { MemoryLevel } from 'memory-level';
import { afterEach, describe, expect, it } from 'vitest';
import type { Consistency } from '@hearsay/service';
import { openStore, versionToString, type Store, type StoredRecord, type Version } from '@hearsay/storage';
import type { CoordinatorConfig } from '../src/coordinator-context.ts';
import { Coordinator } from '../src/coordinator.ts';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { StaticMembership, type MemberInfo } from '../src/membership.ts';
import type { PeerClient } from '../src/peer.ts';
import { VirtualClock } from './virtual-clock.ts';

const member = (id: string, state: MemberInfo['state'] = 'alive'): MemberInfo => ({ id, state, http: `http://${id}`, gossip: '', incarnation: 0 });

interface PeerCall {
  readonly to: string;
  readonly kind: 'write' | 'read' | 'hint';
  readonly keys: readonly string[];
}

/** A peer that answers at once: writes are accepted, reads find nothing. Records every call. */
function recordingPeers(calls: PeerCall[]) {
  return (m: MemberInfo): PeerClient => ({
    write: async (records) => {
      calls.push({ to: m.id, kind: 'write', keys: records.map((r) => r.key) });
      return records.map(() => null);
    },
    read: async (keys) => {
      calls.push({ to: m.id, kind: 'read', keys });
      return keys.map(() => undefined);
    },
    hint: async (_target, records) => void calls.push({ to: m.id, kind: 'hint', keys: records.map((r) => r.key) }),
    scan: async () => ({ records: [], more: false }),
    repair: async () => {
      throw new Error('not in these tests');
    },
    purge: async () => 0,
    ring: async (ring) => ring,
    stream: async () => ({ records: [], next: null }),
  });
}

interface Setup {
  readonly coordinator: Coordinator;
  readonly store: Store;
  readonly membership: StaticMembership;
  readonly clock: VirtualClock;
  readonly calls: PeerCall[];
  readonly db: MemoryLevel<string, Uint8Array>;
}

const opened: Setup[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) {
    await s.coordinator.stop();
    await s.store.close().catch(() => undefined);
    await s.db.close();
  }
});

async function setup(
  config: Partial<CoordinatorConfig>,
  members: readonly MemberInfo[] = [member('n1')],
  wrapStore: (store: Store) => Store = (store) => store,
): Promise<Setup> {
  const clock = new VirtualClock();
  const db = new MemoryLevel<string, Uint8Array>({ valueEncoding: 'view' });
  await db.open();
  const store = await openStore({ db: db.sublevel('data') as never, nodeId: 'n1', bucketBits: 10, clock });
  const hints = new HintStore(hintsSublevel(db));
  await hints.open();
  const membership = new StaticMembership('n1', members);
  const calls: PeerCall[] = [];
  const coordinator = new Coordinator({ store: wrapStore(store), membership, peers: recordingPeers(calls), hints, clock, config });
  const s = { coordinator, store, membership, clock, calls, db };
  opened.push(s);
  return s;
}

/** What a client can observe of an answer: the record, or the error's name, code, message and details. */
async function outcome(p: Promise<StoredRecord | undefined | null>): Promise<unknown> {
  try {
    const r = await p;
    if (r === null) return { mustWait: true };
    if (r === undefined) return { found: false };
    return {
      key: r.key,
      value: Buffer.from(r.value).toString('hex'),
      version: versionToString(r.version),
      tombstone: r.tombstone,
      contentType: r.contentType ?? null,
    };
  } catch (e) {
    const err = e as { name?: unknown; code?: unknown; message?: unknown; details?: unknown };
    return { error: { name: err.name, code: err.code, message: err.message, details: err.details } };
  }
}

type Op =
  | { readonly kind: 'get'; readonly key: number; readonly consistency: Consistency }
  | {
      readonly kind: 'put';
      readonly key: number;
      readonly value: number;
      readonly consistency: Consistency;
      readonly contentType: string | null;
      readonly ifMatch: 'none' | '*' | 'seen' | 'bogus';
      readonly ifNoneMatch: boolean;
    }
  | { readonly kind: 'delete'; readonly key: number; readonly consistency: Consistency; readonly ifMatch: 'none' | '*' | 'seen' | 'bogus' };

const consistencyArb = fc.constantFrom<Consistency>('one', 'quorum', 'all');
const ifMatchArb = fc.constantFrom<'none' | '*' | 'seen' | 'bogus'>('none', 'none', '*', 'seen', 'bogus');
const opArb = (keys: number): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ kind: fc.constant('get' as const), key: fc.nat(keys - 1), consistency: consistencyArb }),
    fc.record({
      kind: fc.constant('put' as const),
      key: fc.nat(keys - 1),
      value: fc.nat(1000),
      consistency: consistencyArb,
      contentType: fc.constantFrom(null, 'text/plain', 'application/json'),
      ifMatch: ifMatchArb,
      ifNoneMatch: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('delete' as const), key: fc.nat(keys - 1), consistency: consistencyArb, ifMatch: ifMatchArb }),
  );

/** Runs `op` on a coordinator; `seen` holds the versions answered so far (the same on both sides when they agree). */
function runOp(c: Coordinator, op: Op, keys: readonly string[], seen: readonly Version[]): Promise<StoredRecord | undefined> {
  const key = keys[op.key]!;
  const ifMatch = (choice: 'none' | '*' | 'seen' | 'bogus'): { ifMatch?: Version | '*' } => {
    if (choice === '*') return { ifMatch: '*' };
    if (choice === 'seen' && seen.length > 0) return { ifMatch: seen[op.key % seen.length]! };
    if (choice === 'bogus') return { ifMatch: { ms: 1, counter: 0, node: 'nobody' } };
    return {};
  };
  switch (op.kind) {
    case 'get':
      return c.get(key, { consistency: op.consistency });
    case 'put':
      return c.put(key, new TextEncoder().encode(`value ${op.value}`), {
        consistency: op.consistency,
        ...(op.contentType === null ? {} : { contentType: op.contentType }),
        ...ifMatch(op.ifMatch),
        ...(op.ifNoneMatch ? { ifNoneMatch: '*' as const } : {}),
      });
    case 'delete':
      return c.delete(key, { consistency: op.consistency, ...ifMatch(op.ifMatch) });
  }
}

async function storedRecords(store: Store): Promise<unknown[]> {
  const page = await store.scan({ limit: 1000, includeTombstones: true });
  return page.records.map((r) => [r.key, versionToString(r.version), r.tombstone, Buffer.from(r.value).toString('hex'), r.contentType ?? null]);
}

/** The same requests through the fast path and the general path: every observable must agree. */
async function expectSameAsGeneralPath(members: readonly MemberInfo[], config: Partial<CoordinatorConfig>, keys: readonly string[], ops: readonly Op[]): Promise<void> {
  const fast = await setup({ ...config, singleReplicaFastPath: true }, members);
  const general = await setup({ ...config, singleReplicaFastPath: false }, members);
  const seen: Version[] = [];
  for (const op of ops) {
    const a = await outcome(runOp(fast.coordinator, op, keys, seen));
    const b = await outcome(runOp(general.coordinator, op, keys, seen));
    expect(a, JSON.stringify(op)).toEqual(b);
    const version = (a as { version?: string }).version;
    if (version !== undefined) {
      const r = await fast.store.getRecord(keys[op.key]!);
      if (r !== undefined) seen.push(r.version);
    }
  }
  await fast.coordinator.settled();
  await general.coordinator.settled();
  expect(fast.coordinator.counters).toEqual(general.coordinator.counters);
  expect(await storedRecords(fast.store)).toEqual(await storedRecords(general.store));
  expect(fast.calls).toEqual([]);
  expect(general.calls).toEqual([]);
  // Versions come from each store's clock: they agree only if both clocks saw the same observations.
  expect(fast.store.now()).toEqual(general.store.now());
  for (const s of [fast, general]) opened.splice(opened.indexOf(s), 1);
  for (const s of [fast, general]) {
    await s.coordinator.stop();
    await s.store.close();
    await s.db.close();
  }
}

describe('single-replica fast path', () => {
  it('a one-member cluster answers every request as the general path does (answers, errors, versions, counters, data)', async () => {
    const keys = ['a', 'b', 'c', 'd/é'];
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(keys.length), { minLength: 1, maxLength: 40 }), (ops) =>
        expectSameAsGeneralPath([member('n1')], {}, keys, ops),
      ),
      { numRuns: 40 },
    );
  });

  it('with RF 1, keys this node owns alone are answered as the general path does', async () => {
    const members = [member('n1'), member('n2')];
    const probe = await setup({ replicationFactor: 1 }, members);
    const ours = Array.from({ length: 60 }, (_, i) => `key-${i}`)
      .filter((k) => probe.coordinator.partitionMap.preferenceList(probe.coordinator.partitionOf(k))[0] === 'n1')
      .slice(0, 4);
    expect(ours.length).toBe(4);
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(ours.length), { minLength: 1, maxLength: 40 }), (ops) =>
        expectSameAsGeneralPath(members, { replicationFactor: 1 }, ours, ops),
      ),
      { numRuns: 20 },
    );
  });

  it('a store that fails gives the same 503 and counters on both paths', async () => {
    let failing = false;
    // Reads and writes fail (as a busy or broken store would) while the clock still works.
    const flaky = (store: Store): Store =>
      new Proxy(store, {
        get(target, name) {
          const v: unknown = Reflect.get(target, name, target);
          if (typeof v !== 'function') return v;
          const f = (v as (...args: unknown[]) => unknown).bind(target);
          if (name !== 'getRecord' && name !== 'applyEach' && name !== 'put' && name !== 'delete') return f;
          return (...args: unknown[]) => (failing ? Promise.reject(new Error('disk on fire')) : f(...args));
        },
      });
    const answers: unknown[][] = [];
    const counters: unknown[] = [];
    for (const singleReplicaFastPath of [true, false]) {
      failing = false;
      const s = await setup({ singleReplicaFastPath }, [member('n1')], flaky);
      await s.coordinator.put('k', new Uint8Array([1]), { consistency: 'quorum' });
      failing = true;
      const failed = [
        await outcome(s.coordinator.get('k', { consistency: 'one' })),
        await outcome(s.coordinator.put('k', new Uint8Array([2]), { consistency: 'all' })),
        await outcome(s.coordinator.delete('k', { consistency: 'quorum' })),
        await outcome(s.coordinator.put('k', new Uint8Array([3]), { consistency: 'quorum', ifNoneMatch: '*' })),
      ];
      // A closed store: reads fail the same way; a write fails earlier, on the clock, alike on both paths.
      failing = false;
      await s.store.close();
      failed.push(await outcome(s.coordinator.get('k', { consistency: 'all' })), await outcome(s.coordinator.delete('k', { consistency: 'one' })));
      answers.push(failed);
      await s.coordinator.settled();
      counters.push({ ...s.coordinator.counters });
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(counters[0]).toEqual(counters[1]);
    const insufficient = { error: { name: 'ServiceError', code: 'INSUFFICIENT_REPLICAS', message: '1 of 1 replicas required, 0 acknowledged', details: { acknowledged: 0, required: 1 } } };
    expect(answers[0]!.slice(0, 5)).toEqual([insufficient, insufficient, insufficient, insufficient, insufficient]);
    expect(counters[0]).toMatchObject({ writes: 3, writeFailures: 2, reads: 2, readFailures: 3 });
  });

  it('a store that does not answer in time gives the same TIMEOUT on both paths', async () => {
    const hang = (store: Store): Store =>
      new Proxy(store, {
        get(target, name) {
          if (name === 'getRecord' || name === 'applyEach' || name === 'put' || name === 'delete') return () => new Promise(() => undefined);
          const v: unknown = Reflect.get(target, name, target);
          return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
        },
      });
    const answers: unknown[][] = [];
    for (const singleReplicaFastPath of [true, false]) {
      const s = await setup({ singleReplicaFastPath, requestTimeoutMs: 700 }, [member('n1')], hang);
      const started = s.clock.now();
      answers.push([
        await outcome(s.clock.runUntil(s.coordinator.get('k', { consistency: 'quorum' }))),
        await outcome(s.clock.runUntil(s.coordinator.put('k', new Uint8Array([1]), { consistency: 'one' }))),
        s.clock.now() - started,
        { ...s.coordinator.counters },
      ]);
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(answers[0]![0]).toEqual({
      error: { name: 'ServiceError', code: 'TIMEOUT', message: '1 of 1 replicas required, 0 answered in time', details: { acknowledged: 0, required: 1 } },
    });
    expect(answers[0]![2]).toBe(1400);
  });

  it('takes the general path, per request, as soon as a second member shares the keys, and the fast one again when it leaves', async () => {
    const s = await setup({});
    const c = s.coordinator;
    await c.put('k', new Uint8Array([1]), { consistency: 'all' });
    await c.get('k', { consistency: 'all' });
    expect(s.calls).toEqual([]);

    s.membership.upsert(member('n2'));
    expect(c.partitionMap.replicationFactor).toBe(2);
    await c.put('k', new Uint8Array([2]), { consistency: 'all' });
    expect(s.calls).toEqual([{ to: 'n2', kind: 'write', keys: ['k'] }]);
    // n2 has nothing (the fake peer reads nothing): the read answers ours and read-repairs n2.
    const got = await c.get('k', { consistency: 'all' });
    expect(got?.value).toEqual(new Uint8Array([2]));
    await c.settled();
    expect(s.calls.slice(1)).toEqual([
      { to: 'n2', kind: 'read', keys: ['k'] },
      { to: 'n2', kind: 'write', keys: ['k'] },
    ]);
    expect(c.counters.readRepairs).toBe(1);

    // Down: its writes become hints kept here (no stand-in among two members).
    s.membership.setState('n2', 'dead');
    await expect(c.put('k', new Uint8Array([3]), { consistency: 'all' })).rejects.toMatchObject({ code: 'INSUFFICIENT_REPLICAS' });
    await c.settled();
    expect(c.counters.hintsKeptLocally).toBe(1);

    s.membership.setState('n2', 'left');
    s.calls.length = 0;
    await c.put('k', new Uint8Array([4]), { consistency: 'all' });
    expect((await c.get('k', { consistency: 'all' }))?.value).toEqual(new Uint8Array([4]));
    await c.settled();
    expect(s.calls).toEqual([]);
    expect(c.counters.hintsKeptLocally).toBe(1);
  });

  it('with RF 1 and two members, a key owned by the other member still goes to it', async () => {
    const s = await setup({ replicationFactor: 1 }, [member('n1'), member('n2')]);
    const c = s.coordinator;
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    const theirs = keys.filter((k) => c.partitionMap.preferenceList(c.partitionOf(k))[0] === 'n2');
    const ours = keys.filter((k) => !theirs.includes(k));
    expect(theirs.length).toBeGreaterThan(0);
    expect(ours.length).toBeGreaterThan(0);
    for (const k of ours) await c.put(k, new Uint8Array([1]), { consistency: 'one' });
    expect(s.calls).toEqual([]);
    await c.put(theirs[0]!, new Uint8Array([1]), { consistency: 'one' });
    expect(await c.get(theirs[0]!, { consistency: 'one' })).toBeUndefined(); // the fake n2 keeps nothing
    expect(s.calls).toEqual([
      { to: 'n2', kind: 'write', keys: [theirs[0]] },
      { to: 'n2', kind: 'read', keys: [theirs[0]] },
    ]);
    expect(await s.store.getRecord(theirs[0]!)).toBeUndefined();
  });
});

describe('getNow (a synchronous get for the single-replica path)', () => {
  it('answers from the store at once after a write (its cache), as get does', async () => {
    const s = await setup({});
    const written = await s.coordinator.put('k', new Uint8Array([7]), { consistency: 'quorum', contentType: 'text/plain' });
    const now = s.coordinator.getNow('k', { consistency: 'quorum' });
    expect(now).toEqual(await s.coordinator.get('k', { consistency: 'quorum' }));
    expect(now?.version).toEqual(written.version);
    await s.coordinator.delete('k', { consistency: 'one' });
    expect(s.coordinator.getNow('k', { consistency: 'one' })).toBeUndefined();
  });

  /** The store plus a `getRecordNow` that answers from `known` and says null (must wait) for other keys. */
  const withReadNow =
    (known: Map<string, StoredRecord | undefined>, broken = { on: false }) =>
    (store: Store): Store =>
      new Proxy(store, {
        get(target, name) {
          if (name === 'getRecordNow') {
            return (key: string) => {
              if (broken.on) throw new Error('disk on fire');
              return known.has(key) ? known.get(key) : null;
            };
          }
          const v: unknown = Reflect.get(target, name, target);
          return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
        },
      });

  async function seeded(c: Coordinator, store: Store, known: Map<string, StoredRecord | undefined>): Promise<void> {
    await c.put('live', new TextEncoder().encode('v'), { consistency: 'quorum', contentType: 'text/plain' });
    await c.put('gone', new TextEncoder().encode('v'), { consistency: 'quorum' });
    await c.delete('gone', { consistency: 'quorum' });
    await c.put('slow', new TextEncoder().encode('v'), { consistency: 'quorum' });
    for (const k of ['live', 'gone', 'missing']) known.set(k, await store.getRecord(k));
  }

  it('answers what get answers, with the same counters, and null where the store must wait', async () => {
    const known = new Map<string, StoredRecord | undefined>();
    const now = await setup({}, [member('n1')], withReadNow(known));
    const general = await setup({ singleReplicaFastPath: false });
    await seeded(now.coordinator, now.store, known);
    await seeded(general.coordinator, general.store, new Map());
    for (const key of ['live', 'gone', 'missing']) {
      for (const consistency of ['one', 'quorum', 'all'] as const) {
        const a = await outcome(Promise.resolve(now.coordinator.getNow(key, { consistency })));
        const b = await outcome(general.coordinator.get(key, { consistency }));
        expect(a, `${key} ${consistency}`).toEqual(b);
      }
    }
    expect(now.coordinator.getNow('slow', { consistency: 'quorum' })).toBeNull();
    await general.coordinator.settled();
    expect(now.coordinator.counters).toEqual(general.coordinator.counters);
    expect(now.coordinator.counters.reads).toBe(9);
    expect(now.calls).toEqual([]);
  });

  it('is null when the store must wait, and when another member shares the key', async () => {
    const waiting = await setup({}, [member('n1')], withReadNow(new Map()));
    await waiting.coordinator.put('k', new Uint8Array([1]), { consistency: 'one' });
    expect(waiting.coordinator.getNow('k', { consistency: 'one' })).toBeNull();
    expect(waiting.coordinator.counters.reads).toBe(0);

    const known = new Map<string, StoredRecord | undefined>();
    const s = await setup({}, [member('n1')], withReadNow(known));
    await s.coordinator.put('k', new Uint8Array([1]), { consistency: 'one' });
    known.set('k', await s.store.getRecord('k'));
    expect(s.coordinator.getNow('k', { consistency: 'one' })?.value).toEqual(new Uint8Array([1]));
    s.membership.upsert(member('n2'));
    expect(s.coordinator.getNow('k', { consistency: 'one' })).toBeNull();
    expect(s.coordinator.counters.reads).toBe(1);
    s.membership.setState('n2', 'left');
    expect(s.coordinator.getNow('k', { consistency: 'one' })?.value).toEqual(new Uint8Array([1]));
  });

  it('fails as get does: a failing store is 503 INSUFFICIENT_REPLICAS, a stopped node UNAVAILABLE', async () => {
    const broken = { on: false };
    const s = await setup({}, [member('n1')], withReadNow(new Map(), broken));
    const flaky = await setup({ singleReplicaFastPath: false }, [member('n1')], (store) =>
      new Proxy(store, {
        get(target, name) {
          const v: unknown = Reflect.get(target, name, target);
          if (name === 'getRecord') return () => Promise.reject(new Error('disk on fire'));
          return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
        },
      }),
    );
    broken.on = true;
    const a = await outcome(Promise.resolve().then(() => s.coordinator.getNow('k', { consistency: 'all' })));
    const b = await outcome(flaky.coordinator.get('k', { consistency: 'all' }));
    expect(a).toEqual(b);
    expect(a).toMatchObject({ error: { code: 'INSUFFICIENT_REPLICAS' } });
    expect(s.coordinator.counters).toEqual(flaky.coordinator.counters);

    await s.coordinator.stop();
    const stopped = await outcome(Promise.resolve().then(() => s.coordinator.getNow('k', { consistency: 'one' })));
    expect(stopped).toMatchObject({ error: { code: 'UNAVAILABLE' } });
  });
});
