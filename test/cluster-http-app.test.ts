/**
 * The coordinator behind the real HTTP app of `@hearsay/http`, three nodes in
 * one process: public requests through `app.request`, internode requests
 * through the HTTP transport into the other nodes' apps (mounted under
 * `/internal`, signed with the cluster key). Real time, but nothing waits on a
 * timer: every node is up and answers at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLevel } from 'memory-level';
import { createApp, type HearsayApp } from '@hearsay/http';
import { openStore, type Store } from '@hearsay/storage';
import { backgroundClock } from '@hearsay/clock';
import { createClusterNode, createHttpTransport, hintsSublevel, StaticMembership, type ClusterNode } from '@hearsay/cluster';

interface Node {
  id: string;
  db: MemoryLevel<string, Uint8Array>;
  store: Store;
  node: ClusterNode;
  app: HearsayApp;
}

const ids = ['n1', 'n2', 'n3'];
const nodes = new Map<string, Node>();
const url = (id: string): string => `http://${id}.test`;

beforeAll(async () => {
  // Internode requests go straight into the target node's app (filled in below, before any request).
  const route = (u: string, init: RequestInit): Promise<Response> => {
    const id = new URL(u).hostname.split('.')[0]!;
    return Promise.resolve(nodes.get(id)!.app.request(u, init));
  };
  for (const id of ids) {
    const db = new MemoryLevel<string, Uint8Array>();
    const store = await openStore({ db: db.sublevel('data') as never, nodeId: id, bucketBits: 10 });
    const membership = new StaticMembership(
      id,
      ids.map((m) => ({ id: m, state: 'alive' as const, http: url(m), gossip: `${m}:7946`, incarnation: 1 })),
    );
    const node = createClusterNode({
      store,
      hintsDb: hintsSublevel(db),
      membership,
      clusterKey: 'test-key',
      config: { repairPartitionIntervalMs: 0, partitionBits: 4 },
      transportFactory: (m) => createHttpTransport({ baseUrl: m.http, targetId: m.id, clusterKey: 'test-key', clock: backgroundClock, fetch: route }),
    });
    await node.start();
    nodes.set(id, { id, db, store, node, app: createApp({ service: node.service, internal: node.internalApp }) });
  }
});

afterAll(async () => {
  for (const n of nodes.values()) {
    await n.node.stop();
    await n.store.close();
    await n.db.close();
  }
});

const req = (id: string, path: string, init?: RequestInit) => nodes.get(id)!.app.request(url(id) + path, init);

describe('the cluster behind the HTTP API', () => {
  it('a quorum PUT through one node is read at quorum through every other node', async () => {
    const put = await req('n1', '/v1/kv/greeting', { method: 'PUT', body: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(put.status).toBe(204);
    const etag = put.headers.get('etag');
    for (const id of ['n2', 'n3']) {
      const get = await req(id, '/v1/kv/greeting?consistency=quorum');
      expect(get.status).toBe(200);
      expect(await get.text()).toBe('hello');
      expect(get.headers.get('etag')).toBe(etag);
      expect(get.headers.get('content-type')).toContain('text/plain');
    }
    // Every replica has it (RF 3 of 3).
    for (const n of nodes.values()) expect((await n.store.getRecord('greeting'))?.tombstone).toBe(false);
  });

  it('answers 412 on a failed precondition and 404 after a delete', async () => {
    expect((await req('n2', '/v1/kv/greeting', { method: 'PUT', body: 'x', headers: { 'if-none-match': '*' } })).status).toBe(412);
    expect((await req('n3', '/v1/kv/greeting', { method: 'DELETE' })).status).toBe(204);
    expect((await req('n1', '/v1/kv/greeting')).status).toBe(404);
  });

  it('lists members with their partitions', async () => {
    const res = await req('n2', '/v1/cluster');
    const body = (await res.json()) as { self: string; members: { id: string; state: string; partitions: number[] }[] };
    expect(body.self).toBe('n2');
    expect(body.members.map((m) => m.id)).toEqual(ids);
    expect(body.members.every((m) => m.state === 'alive' && m.partitions.length === 16)).toBe(true);
  });

  it('streams POST /v1/repair as NDJSON ending in an in-sync summary', async () => {
    await nodes.get('n3')!.store.apply({ key: 'only-on-n3', value: new TextEncoder().encode('v'), version: { ms: 1, counter: 0, node: 'n3' }, tombstone: false });
    const res = await req('n1', '/v1/repair', { method: 'POST' });
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string; inSync?: boolean; keysReceived?: number });
    const summary = lines.at(-1)!;
    expect(summary).toMatchObject({ type: 'summary', inSync: true, keysReceived: 1 });
    expect(lines.length).toBe(17);
    expect((await nodes.get('n1')!.store.getRecord('only-on-n3'))?.key).toBe('only-on-n3');
  });

  it('refuses internode requests without the cluster key', async () => {
    const res = await req('n1', '/internal/write', { method: 'POST', body: new Uint8Array([0x80]), headers: { 'content-length': '1' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('connection')).toBe('close');
  });
});
