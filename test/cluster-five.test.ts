/**
 * Five real `hearsay start` processes on loopback: a write at quorum through
 * one node is read at quorum through every other; a sixth node started with
 * another cluster key can neither join nor write. Waits poll with deadlines.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backgroundClock } from '@hearsay/clock';
import { createHttpTransport, InternodePeerClient } from '@hearsay/cluster';
import { aliveMembers, api, freePorts, get, internodeTls, put, TestCluster, TestNode, until } from './cluster-processes.ts';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(5, 'five-node-secret');
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('a 5-node cluster of real processes', () => {
  it('reads at quorum through every node what was written at quorum through one', async () => {
    for (const writer of cluster.nodes) {
      const key = `five/from-${writer.id}`;
      expect((await put(writer, key, `written through ${writer.id}`)).status).toBe(204);
      for (const reader of cluster.nodes.filter((n) => n !== writer)) {
        expect(await get(reader, key), `${key} read through ${reader.id}`).toBe(`written through ${writer.id}`);
      }
    }
  });

  it('shows every member with its partitions in /v1/cluster', async () => {
    const view = (await (await api(`${cluster.nodes[0]!.url}/v1/cluster`)).json()) as {
      members: Array<{ id: string; state: string; http: string; partitions: number[] }>;
    };
    expect(view.members.map((m) => m.id).sort()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    // 256 partitions, RF 3: 768 replica slots spread over the five.
    expect(view.members.reduce((sum, m) => sum + m.partitions.length, 0)).toBe(768);
  });
});

describe('a node with another cluster key', () => {
  let tmp: string;
  let intruder: TestNode;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'hearsay-intruder-'));
    const [httpPort, gossipPort] = await freePorts(2, true);
    intruder = new TestNode('intruder', httpPort!, gossipPort!, join(tmp, 'intruder'), 'another-secret', [
      cluster.nodes[0]!.gossipAddress,
      cluster.nodes[1]!.gossipAddress,
    ]);
    intruder.start();
    // It runs and answers health (503: it never sees a peer, so it never serves).
    await until(async () => ((await api(`${intruder.url}/v1/health`).catch(() => undefined))?.status === 503 ? true : undefined), () => intruder.describe());
  }, 60_000);

  afterAll(async () => {
    await intruder?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('cannot join: no member ever lists it, and it sees nobody', async () => {
    // Its join attempts go to the seeds every joinRetry; give it a few rounds of
    // gossip by waiting for a fresh write to replicate, then check no view has it.
    expect((await put(cluster.nodes[2]!, 'five/after-intruder', 'x')).status).toBe(204);
    for (const node of cluster.nodes) {
      const view = (await (await api(`${node.url}/v1/cluster`)).json()) as { members: Array<{ id: string }> };
      expect(view.members.map((m) => m.id)).not.toContain('intruder');
    }
    // The intruder itself still waits to see a peer: not serving, its view (if it shows one) only itself.
    const health = await api(`${intruder.url}/v1/health`);
    expect(health.status).toBe(503);
    expect((await aliveMembers(intruder)).filter((id) => id !== 'intruder')).toEqual([]);
    // A node that cannot see the cluster does not serve writes.
    expect((await put(intruder, 'five/intruder-write', 'x')).status).toBe(503);
    expect(await get(cluster.nodes[0]!, 'five/intruder-write')).toBeUndefined();
  });

  it('cannot write through the internode API: its signed requests are refused', async () => {
    const peer = new InternodePeerClient(
      createHttpTransport({ baseUrl: cluster.nodes[0]!.url, targetId: cluster.nodes[0]!.id, clusterKey: 'another-secret', clock: backgroundClock, ...internodeTls() }),
      { clock: backgroundClock },
    );
    await expect(peer.scan({ prefix: '', limit: 1 })).rejects.toMatchObject({ code: 'PEER_UNAUTHORIZED' });
    const unsigned = await api(`${cluster.nodes[0]!.url}/internal/write`, { method: 'POST', body: new Uint8Array([0x90]) });
    expect(unsigned.status).toBe(401);
  });
});

describe('a node stopped with SIGTERM', () => {
  it('leaves the cluster: exits 0, the others list it as left at once, quorum writes go on', async () => {
    const leaver = cluster.node('n5');
    leaver.signal('SIGTERM');
    expect(await leaver.proc!.exitCode()).toBe(0);
    const logs = leaver.proc!.logs().map((l) => l.msg);
    expect(logs).toEqual(expect.arrayContaining(['leaving the cluster', 'store closed; node stopped']));
    const others = cluster.nodes.filter((n) => n !== leaver);
    await until(async () => {
      for (const node of others) {
        const view = (await (await api(`${node.url}/v1/cluster`)).json()) as { members: Array<{ id: string; state: string }> };
        if (view.members.find((m) => m.id === 'n5')?.state !== 'left') return undefined;
      }
      return true;
    }, () => 'n5 not seen as left by every other node');
    expect((await put(others[0]!, 'five/after-leave', 'still here')).status).toBe(204);
    for (const node of others) expect(await get(node, 'five/after-leave')).toBe('still here');
  });
});
