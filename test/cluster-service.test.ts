/**
 * `startClusterService` with the real gossip runtime on loopback sockets
 * (ports picked by the OS) and the real HTTP app; internode HTTP requests are
 * routed to the apps in process. Real time: each wait polls a condition with
 * a deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLevel } from 'memory-level';
import { createApp, type HearsayApp } from '@hearsay/http';
import { openStore, type Store } from '@hearsay/storage';
import { backgroundClock } from '@hearsay/clock';
import { createHttpTransport, hintsSublevel, InternodePeerClient, startClusterService, type ClusterService } from '@hearsay/cluster';

interface Running {
  id: string;
  db: MemoryLevel<string, Uint8Array>;
  store: Store;
  cluster: ClusterService;
  app: HearsayApp;
}

const running = new Map<string, Running>();
const url = (id: string): string => `http://${id}.test`;
const route = (u: string, init: RequestInit): Promise<Response> => {
  const r = running.get(new URL(u).hostname.split('.')[0]!);
  return r === undefined ? Promise.reject(new Error('connection refused')) : Promise.resolve(r.app.request(u, init));
};
const FAST_GOSSIP = { probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, pushPullIntervalMs: 1000, joinRetryMs: 100 };

async function start(id: string, seeds: string[], clusterKey: string): Promise<Running> {
  const db = new MemoryLevel<string, Uint8Array>();
  const store = await openStore({ db: db.sublevel('data') as never, nodeId: id, bucketBits: 8 });
  const cluster = await startClusterService({
    store,
    hintsDb: hintsSublevel(db),
    httpUrl: url(id),
    gossip: { host: '127.0.0.1', port: 0, seeds, config: FAST_GOSSIP },
    clusterKey,
    config: { partitionBits: 4, repairPartitionIntervalMs: 0 },
    fetch: route,
  });
  const r = { id, db, store, cluster, app: createApp({ service: cluster.service, internal: cluster.internal }) };
  running.set(id, r);
  return r;
}

async function until(cond: () => boolean, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const aliveIds = (r: Running): string[] =>
  r.cluster.membership
    .members()
    .filter((m) => m.state === 'alive' && m.http !== '')
    .map((m) => m.id)
    .sort();

beforeAll(async () => {
  const a = await start('a', [], 'secret');
  const seed = a.cluster.gossip.localAddress;
  await start('b', [seed], 'secret');
  await start('c', [seed], 'secret');
  await until(() => [...running.values()].every((r) => aliveIds(r).join() === 'a,b,c'));
  // A node coordinates writes once gossip has measured the clocks of a majority of the members it reaches (clock-fence.ts).
  await until(() => [...running.values()].every((r) => r.cluster.node.clockFence.verdict().state === 'ok'));
}, 30_000);

afterAll(async () => {
  for (const r of running.values()) {
    await r.cluster.stop();
    await r.store.close();
    await r.db.close();
  }
});

describe('startClusterService', () => {
  it('forms a cluster over gossip and replicates through it', async () => {
    const put = await running.get('a')!.app.request(`${url('a')}/v1/kv/k1`, { method: 'PUT', body: 'v1' });
    expect(put.status).toBe(204);
    for (const id of ['b', 'c']) {
      const get = await running.get(id)!.app.request(`${url(id)}/v1/kv/k1`);
      expect(await get.text()).toBe('v1');
    }
    const view = (await (await running.get('c')!.app.request(`${url('c')}/v1/cluster`)).json()) as {
      members: { id: string; state: string; http: string; gossip: string }[];
    };
    expect(view.members.map((m) => [m.id, m.state, m.http])).toEqual([
      ['a', 'alive', url('a')],
      ['b', 'alive', url('b')],
      ['c', 'alive', url('c')],
    ]);
    // The clocks gossip measured from its probes (one machine: offsets within their error bounds of 0), and c's own verdict.
    type Clocks = { members: { id: string; clockOffsetMs?: number; clockErrorMs?: number; clock?: { state: string; within: number } }[] };
    const clocksOfC = async (): Promise<Clocks> => (await (await running.get('c')!.app.request(`${url('c')}/v1/cluster`)).json()) as Clocks;
    // Polled: c measures each member about once per N probe intervals, and its verdict is reused for up to 100 ms.
    let clocks = await clocksOfC();
    const deadline = Date.now() + 15_000;
    while (clocks.members.find((x) => x.id === 'c')?.clock?.within !== 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      clocks = await clocksOfC();
    }
    for (const id of ['a', 'b']) {
      const m = clocks.members.find((x) => x.id === id)!;
      expect(m.clockErrorMs).toBeGreaterThanOrEqual(1);
      expect(Math.abs(m.clockOffsetMs!)).toBeLessThanOrEqual(m.clockErrorMs! + 1);
    }
    expect(clocks.members.find((x) => x.id === 'c')?.clock).toMatchObject({ state: 'ok', within: 2 });
    const metrics = await (await running.get('c')!.app.request(`${url('c')}/metrics`)).text();
    expect(metrics).toMatch(/^hearsay_cluster_clock_offset_seconds\{member="a"\} -?\d/m);
    expect(metrics).toMatch(/^hearsay_cluster_clock_state\{state="ok"\} 1$/m);
    // Status and key counts travel by gossip; `a` has published `serving` by now.
    await until(() => running.get('c')!.cluster.membership.members().find((m) => m.id === 'a')?.status === 'serving');
  });

  it('keeps a node with another cluster key out', async () => {
    const seed = running.get('a')!.cluster.gossip.localAddress;
    const dropsBefore = running.get('a')!.cluster.gossip.stats().droppedTotal;
    const intruder = await start('x', [seed], 'another-secret');
    // Its join attempts reach a and are dropped (they do not decrypt).
    await until(() => running.get('a')!.cluster.gossip.stats().droppedTotal > dropsBefore);
    expect(aliveIds(intruder)).toEqual(['x']);
    expect(aliveIds(running.get('a')!)).toEqual(['a', 'b', 'c']);
    // And its internode requests, signed with its key, are refused.
    const client = new InternodePeerClient(
      createHttpTransport({ baseUrl: url('a'), targetId: 'a', clusterKey: 'another-secret', clock: backgroundClock, fetch: route }),
      { clock: backgroundClock },
    );
    const record = { key: 'k1', value: new Uint8Array([1]), version: { ms: Date.now() + 1000, counter: 0, node: 'x' }, tombstone: false };
    await expect(client.write([record])).rejects.toMatchObject({ code: 'PEER_UNAUTHORIZED' });
    expect(await (await running.get('b')!.app.request(`${url('b')}/v1/kv/k1`)).text()).toBe('v1');
    await intruder.cluster.stop();
    await intruder.store.close();
    await intruder.db.close();
    running.delete('x');
  });
});
