/**
 * Membership changes on real `hearsay start` processes on loopback, under
 * continuous `quorum` writes and reads (issue 16): grow 3 → 5, shrink
 * 5 → 3 by decommission, SIGKILL a node for good and remove it, replace a
 * dead node. After each: no acknowledged write lost, no quorum read that
 * missed a write acknowledged before it (or answered an older version), and
 * every key on exactly its RF owners, read from each replica directly.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, localRecords, runCli, TestCluster, TestNode, until } from './cluster-processes.ts';
import { checkPlacement, QuorumWorkload, type Target } from './support/quorum-checker.ts';

const KEY = 'topology-test-key';
/** Each membership change (a join, a decommission, a removal, a replacement) must finish within this. */
const CHANGE_DEADLINE_MS = 60_000;

let cluster: TestCluster | undefined;
let workload: QuorumWorkload | undefined;

afterEach(async () => {
  await workload?.stop();
  workload = undefined;
  await cluster?.stop();
  cluster = undefined;
});

interface ClusterJson {
  readonly members: { id: string; state: string; http: string; partitions?: number[] }[];
  readonly topology?: { change: unknown; ring: { id: string; status: string }[] };
}

async function clusterOf(node: TestNode): Promise<ClusterJson | undefined> {
  const response = await fetch(`${node.url}/v1/cluster`).catch(() => undefined);
  if (response?.status !== 200) return undefined;
  return (await response.json()) as ClusterJson;
}

async function serves(node: TestNode): Promise<boolean> {
  const response = await fetch(`${node.url}/v1/health`).catch(() => undefined);
  await response?.arrayBuffer();
  return response?.status === 200;
}

/** Every node of `ids` serves and reports no change in progress, with `ids` exactly the owners. */
async function settled(c: TestCluster, ids: readonly string[]): Promise<void> {
  const want = [...ids].sort().join(',');
  let last = '';
  await until(
    async () => {
      for (const id of ids) {
        const node = c.node(id);
        const view = await clusterOf(node);
        if (!(await serves(node)) || view === undefined) {
          last = `${id} does not serve`;
          return undefined;
        }
        const owners = (view.topology?.ring ?? []).filter((e) => e.status === 'normal' || e.status === 'leaving').map((e) => e.id).sort().join(',');
        if (view.topology?.change !== null || owners !== want) {
          last = `${id} sees owners ${owners} and change ${JSON.stringify(view.topology?.change)}`;
          return undefined;
        }
      }
      return true;
    },
    () => `the cluster did not settle on ${want}: ${last}\n${c.nodes.map((n) => n.describe()).join('\n')}`,
    CHANGE_DEADLINE_MS,
  );
}

/** Stops the workload, then waits for hints and hand-offs and checks every replica directly. */
async function checkEverything(c: TestCluster, w: QuorumWorkload, ids: readonly string[], prefix: string): Promise<void> {
  await w.stop();
  expect(w.acked.length, 'acknowledged writes').toBeGreaterThan(100);
  expect(w.reads.length, 'quorum reads').toBeGreaterThan(100);
  expect(w.staleReads()).toEqual([]);
  let last = { lost: [] as string[], misplaced: [] as string[] };
  await until(
    async () => {
      const view = await clusterOf(c.node(ids[0]!));
      if (view === undefined) return undefined;
      const held = new Map<string, Awaited<ReturnType<typeof localRecords>>>();
      for (const id of ids) held.set(id, await localRecords(c.node(id), prefix));
      last = checkPlacement(w, held, (p) => view.members.filter((m) => m.partitions?.includes(p) === true).map((m) => m.id));
      return last.lost.length === 0 && last.misplaced.length === 0 ? true : undefined;
    },
    () => `replicas after the change: ${last.lost.length} acknowledged writes missing on an owner (${last.lost.slice(0, 5).join('; ')}), ${last.misplaced.length} keys not on exactly their owners (${last.misplaced.slice(0, 5).join('; ')})`,
    CHANGE_DEADLINE_MS,
  );
}

function targetsOf(c: TestCluster, serving: ReadonlySet<string>): () => Target[] {
  return () => c.nodes.filter((n) => serving.has(n.id)).map((n) => ({ id: n.id, url: n.url }));
}

describe('membership changes under continuous quorum writes and reads (real processes)', () => {
  it('grows 3 → 5 by joins and shrinks 5 → 3 by decommission, losing nothing and serving no stale quorum read', async () => {
    cluster = await TestCluster.start(3, KEY);
    const c = cluster;
    const serving = new Set(['n1', 'n2', 'n3']);
    await settled(c, [...serving]);

    workload = new QuorumWorkload(targetsOf(c, serving), { keys: 300, writers: 3, readers: 3, prefix: 'grow-' });
    workload.start();
    await workload.progress(100);
    for (const id of ['n4', 'n5']) {
      await c.addNode(id);
      await settled(c, [...serving, id]);
      serving.add(id);
      await workload.progress(50);
    }
    await checkEverything(c, workload, [...serving], 'grow-');

    workload = new QuorumWorkload(targetsOf(c, serving), { keys: 300, writers: 3, readers: 3, prefix: 'shrink-' });
    workload.start();
    await workload.progress(100);
    for (const id of ['n5', 'n4']) {
      const node = c.node(id);
      // Clients move away first, as an operator drains a load balancer.
      serving.delete(id);
      const result = await runCli(['decommission', '--node', node.url, '--timeout-s', '60']);
      expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
      expect(result.stdout).toContain(`${id} is decommissioned`);
      expect((await node.proc!.exited).code).toBe(0);
      await settled(c, [...serving]);
      await workload.progress(50);
    }
    await checkEverything(c, workload, [...serving], 'shrink-');
  }, 400_000);

  it('removes a node killed for good and replaces a dead one, losing nothing and serving no stale quorum read', async () => {
    cluster = await TestCluster.start(4, KEY);
    const c = cluster;
    const serving = new Set(['n1', 'n2', 'n3', 'n4']);
    await settled(c, [...serving]);

    workload = new QuorumWorkload(targetsOf(c, serving), { keys: 300, writers: 3, readers: 3, prefix: 'remove-' });
    workload.start();
    await workload.progress(100);
    serving.delete('n4');
    c.node('n4').signal('SIGKILL');
    await c.node('n4').proc!.exited;
    await workload.progress(30);
    // `remove` is refused while gossip still has the member alive or suspect (MEMBER_ALIVE): wait until n1 sees it dead
    // (polling /v1/cluster is cheaper than starting the CLI again and again).
    await until(
      async () => ((await clusterOf(c.node('n1')))?.members.find((m) => m.id === 'n4')?.state === 'dead' ? true : undefined),
      () => 'n1 did not see n4 dead',
      CHANGE_DEADLINE_MS,
    );
    const removed = await runCli(['remove', 'n4', '--node', c.node('n1').url, '--timeout-s', '60']);
    expect(removed.code, `${removed.stdout}\n${removed.stderr}`).toBe(0);
    expect(removed.stdout).toContain('n4 is removed');
    await settled(c, [...serving]);
    await workload.progress(50);
    await checkEverything(c, workload, [...serving], 'remove-');

    workload = new QuorumWorkload(targetsOf(c, serving), { keys: 300, writers: 3, readers: 3, prefix: 'replace-' });
    workload.start();
    await workload.progress(100);
    const dead = c.node('n3');
    serving.delete('n3');
    dead.signal('SIGKILL');
    await dead.proc!.exited;
    await workload.progress(30);
    // A new machine: new data dir and ports, the dead node's id.
    const [httpPort, gossipPort] = await freePorts(2, true);
    const replacement = new TestNode('n3', httpPort!, gossipPort!, join(await mkdtemp(join(tmpdir(), 'hearsay-replace-')), 'n3'), KEY, ['n1', 'n2'].map((id) => c.node(id).gossipAddress));
    c.nodes.splice(c.nodes.indexOf(dead), 1, replacement);
    replacement.start(['--replace', 'n3']);
    await settled(c, ['n1', 'n2', 'n3']);
    serving.add('n3');
    await workload.progress(50);
    await checkEverything(c, workload, [...serving], 'replace-');
  }, 400_000);
});
