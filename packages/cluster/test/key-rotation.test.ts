/**
 * Rotating the cluster key without downtime (`ClusterKeys`): at every step
 * of add, use, remove, two nodes that have taken the step and two that have
 * not yet still accept each other's internode requests; a node that dropped
 * a key refuses it; and gossip (a real runtime on loopback) follows the
 * same steps, encrypting with the primary and decrypting with every key.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryLevel } from 'memory-level';
import { Hono } from 'hono';
import { openStore, type Store, type StoredRecord } from '@hearsay/storage';
import { checkHeaders, authHeaders, isAuthFailure } from '../src/auth.ts';
import { ClusterKeys, toClusterKeys } from '../src/cluster-keys.ts';
import { startClusterService, type ClusterService } from '../src/cluster-service.ts';
import { ClusterError } from '../src/errors.ts';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { createHttpTransport } from '../src/http-transport.ts';
import { createInternodeApp } from '../src/internode-app.ts';
import { createInternodeHandler } from '../src/internode-handler.ts';
import { InternodePeerClient } from '../src/peer-client.ts';
import { VirtualClock } from './virtual-clock.ts';

const OLD = 'old-cluster-key-0123456789abcdef';
const NEW = 'new-cluster-key-fedcba9876543210';
/** Base64 of 32 bytes used as is for gossip, spelled with non-zero padding bits (not how the keyring lists it). */
const RAW = `${'a'.repeat(43)}=`;
const rec = (key: string, ms: number): StoredRecord => ({ key, value: new TextEncoder().encode(key), version: { ms, counter: 0, node: 'n9' }, tombstone: false });

describe('ClusterKeys', () => {
  it('the first key is the primary; replace swaps the keys and tells listeners', () => {
    const keys = new ClusterKeys([OLD]);
    const seen: Array<readonly string[]> = [];
    const stop = keys.onChange((next) => seen.push(next));
    keys.replace([OLD, NEW]);
    keys.replace([NEW, OLD]);
    stop();
    keys.replace([NEW]);
    expect(keys.primary).toBe(NEW);
    expect(keys.all).toEqual([NEW]);
    expect(seen).toEqual([[OLD, NEW], [NEW, OLD]]);
  });

  it.each([[[]], [['']], [['a', 'a']]])('refuses %j and keeps the keys in force', (bad) => {
    const keys = new ClusterKeys([OLD]);
    expect(() => keys.replace(bad)).toThrow(ClusterError);
    expect(keys.all).toEqual([OLD]);
  });

  it('toClusterKeys: none for undefined and empty, one key for a string', () => {
    expect(toClusterKeys(undefined)).toBeUndefined();
    expect(toClusterKeys('')).toBeUndefined();
    expect(toClusterKeys('k')?.all).toEqual(['k']);
  });
});

describe('checkHeaders with several keys', () => {
  const request = { method: 'POST', path: '/internal/write', target: 'n1', bodyLength: 0 };
  const headers = (key: string) => {
    const h = new Headers(authHeaders(key, 'POST', '/internal/write', 'n1', 1000, new Uint8Array(0)));
    return { get: (name: string) => h.get(name) };
  };

  it('passes a signature made with any accepted key, refuses one made with none', () => {
    expect(isAuthFailure(checkHeaders([OLD, NEW], request, headers(OLD), 1000))).toBe(false);
    expect(isAuthFailure(checkHeaders([OLD, NEW], request, headers(NEW), 1000))).toBe(false);
    expect(checkHeaders([OLD, NEW], request, headers('third-key'), 1000)).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    // Failures that hold for every key are not retried with the next one.
    expect(checkHeaders([OLD, NEW], request, headers(NEW), 1000 + 60_000)).toMatchObject({ status: 401, code: 'CLOCK_SKEW', offsetMs: 60_000 });
    expect(checkHeaders([OLD, NEW], request, { get: () => undefined }, 1000)).toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});

/** A node's internode routes over a memory store, reached through `fetch` injection. */
async function node(id: string, keys: ClusterKeys) {
  const clock = new VirtualClock();
  const db = new MemoryLevel<string, Uint8Array>();
  const store = await openStore({ db: db.sublevel('data') as never, nodeId: id, bucketBits: 8, clock });
  const hints = new HintStore(hintsSublevel(db));
  await hints.open();
  const app = createInternodeApp({ handle: createInternodeHandler({ store, hints, clock, tombstoneGraceMs: 1000 }), clock, selfId: id, clusterKey: keys });
  const root = new Hono().route('/internal', app);
  return { id, keys, clock, store, fetch: (url: string, init: RequestInit) => Promise.resolve(root.request(url, init)) };
}

type Node = Awaited<ReturnType<typeof node>>;

/** `from` writes a record to `to` through a transport signed with `from`'s keys. */
async function write(from: Node, to: Node, key: string): Promise<void> {
  const transport = createHttpTransport({ baseUrl: `http://${to.id}`, targetId: to.id, clock: from.clock, fetch: to.fetch, clusterKey: from.keys });
  await new InternodePeerClient(transport, { clock: from.clock }).write([rec(key, 1)]);
}

describe('rotation between live nodes', () => {
  it('add, use, remove: taken by one node after the other, no request is refused on the way', async () => {
    const a = await node('a', new ClusterKeys([OLD]));
    const b = await node('b', new ClusterKeys([OLD]));
    const both = async (step: string): Promise<void> => {
      await write(a, b, `${step}/a-to-b`);
      await write(b, a, `${step}/b-to-a`);
    };
    await both('start');
    const steps: Array<readonly string[]> = [[OLD, NEW], [NEW, OLD], [NEW]];
    for (const [i, keys] of steps.entries()) {
      a.keys.replace(keys); // a has taken the step, b not yet
      await both(`step-${i}-half`);
      b.keys.replace(keys);
      await both(`step-${i}-done`);
    }
    expect(await b.store.getRecord('step-2-done/a-to-b')).toBeDefined();
    // The old key is gone everywhere: a node still signing with it is refused.
    const stale = await node('stale', new ClusterKeys([OLD]));
    const refused = await write(stale, a, 'late').catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'PEER_UNAUTHORIZED' });
    expect(await a.store.getRecord('late')).toBeUndefined();
  });

  it('skipping a step refuses: a node that uses the new key before the other has added it', async () => {
    const a = await node('a', new ClusterKeys([NEW, OLD]));
    const b = await node('b', new ClusterKeys([OLD]));
    await expect(write(a, b, 'too-early')).rejects.toMatchObject({ code: 'PEER_UNAUTHORIZED' });
    await write(b, a, 'still-fine');
  });
});

describe('startClusterService follows a rotation in gossip too', () => {
  const FAST_GOSSIP = { probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, pushPullIntervalMs: 200, joinRetryMs: 100 };
  const services: Array<{ cluster: ClusterService; store: Store; db: MemoryLevel<string, Uint8Array> }> = [];
  afterAll(async () => {
    for (const s of services) {
      await s.cluster.stop();
      await s.store.close();
      await s.db.close();
    }
  });

  async function service(id: string, seeds: string[], keys: ClusterKeys): Promise<ClusterService> {
    const db = new MemoryLevel<string, Uint8Array>();
    const store = await openStore({ db: db.sublevel('data') as never, nodeId: id, bucketBits: 8 });
    const cluster = await startClusterService({
      store,
      hintsDb: hintsSublevel(db),
      httpUrl: `http://${id}.test`,
      gossip: { host: '127.0.0.1', port: 0, seeds, config: FAST_GOSSIP },
      clusterKey: keys,
      config: { partitionBits: 4, repairPartitionIntervalMs: 0 },
    });
    services.push({ cluster, store, db });
    return cluster;
  }

  async function until(cond: () => boolean, what: string): Promise<void> {
    const end = Date.now() + 15_000;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`not within 15 s: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('every step keeps gossip decrypting both ways; a node that skips ahead is dropped', async () => {
    const aKeys = new ClusterKeys([OLD]);
    const bKeys = new ClusterKeys([OLD]);
    const a = await service('a', [], aKeys);
    const b = await service('b', [a.gossip.localAddress], bKeys);
    const both = [a, b];
    const alive = (): boolean => both.every((s) => s.membership.members().filter((m) => m.state === 'alive').length === 2);
    await until(alive, 'a and b see each other');
    /** Both complete two more push-pull exchanges (sealed with each one's primary) and drop nothing. */
    const exchangesFlow = async (step: string): Promise<void> => {
      const drops = both.map((s) => s.gossip.stats().droppedTotal);
      const done = both.map((s) => s.gossip.stats().exchangesCompleted);
      await until(() => both.every((s, i) => s.gossip.stats().exchangesCompleted >= done[i]! + 2), `exchanges at ${step}`);
      expect(both.map((s) => s.gossip.stats().droppedTotal), step).toEqual(drops);
      expect(alive(), step).toBe(true);
    };
    for (const [i, keys] of ([[OLD, NEW], [NEW, OLD], [NEW], [NEW, RAW], [RAW, NEW], [RAW]] as const).entries()) {
      aKeys.replace(keys);
      await exchangesFlow(`step ${i}, a only`);
      bKeys.replace(keys);
      await exchangesFlow(`step ${i}, both`);
    }
    // The control: b goes back to the old key alone; a no longer has it and drops b's gossip.
    expect(a.gossip.stats().internalErrors + b.gossip.stats().internalErrors).toBe(0);
    const dropsBefore = a.gossip.stats().droppedTotal;
    bKeys.replace([OLD]);
    await until(() => a.gossip.stats().droppedTotal > dropsBefore, 'a drops gossip sealed with a key it removed');
  });
});
