/**
 * Three real `hearsay start` processes on loopback, one cluster shared by the
 * steps below (each step uses its own key prefix): quorum reads everywhere of
 * a quorum write; a node killed with SIGKILL while quorum writes go on, then
 * caught up by hints and repair; a node frozen with SIGSTOP while writes and
 * deletes go on at `one`, then in sync after `hearsay repair` on each node.
 * Every wait polls a condition with a deadline; nothing sleeps a fixed time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { del, fingerprint, get, localRecords, metric, put, runCli, TestCluster, until } from './cluster-processes.ts';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(3, 'three-node-secret');
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

const keys = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}/k${String(i).padStart(3, '0')}`);

async function hintsKept(ids: readonly string[]): Promise<number> {
  let total = 0;
  for (const id of ids) total += (await metric(cluster.node(id), 'hearsay_cluster_hints')) ?? Number.NaN;
  return total;
}

async function repairEverywhere(): Promise<void> {
  for (const node of cluster.nodes) {
    const result = await runCli(['repair', '--node', node.url]);
    expect(result.code, `hearsay repair on ${node.id}: ${result.stdout}${result.stderr}`).toBe(0);
    expect(result.stdout).toContain('repair: in sync');
    // /metrics counts the run and its sessions.
    expect(await metric(node, 'hearsay_repair_runs_total{result="in_sync"}')).toBeGreaterThanOrEqual(1);
    expect(await metric(node, 'hearsay_repair_sessions_total{outcome="ok"}')).toBeGreaterThan(0);
  }
}

describe('a 3-node cluster of real processes', () => {
  it('reads at quorum through every node what was written at quorum through one', async () => {
    for (const writer of cluster.nodes) {
      const key = `three/from-${writer.id}`;
      expect((await put(writer, key, `written through ${writer.id}`)).status).toBe(204);
      for (const reader of cluster.nodes.filter((n) => n !== writer)) {
        expect(await get(reader, key), `${key} read through ${reader.id}`).toBe(`written through ${writer.id}`);
      }
    }
  });

  it('keeps taking quorum writes with a node killed (SIGKILL), keeps hints, and the restarted node catches up with nothing lost', async () => {
    const n1 = cluster.node('n1');
    const n2 = cluster.node('n2');
    const n3 = cluster.node('n3');
    const before = keys('kill/before', 20);
    for (const key of before) expect((await put(n1, key, `v1 ${key}`)).status).toBe(204);

    n3.signal('SIGKILL');
    await n3.proc!.exited;
    const during = keys('kill/during', 40);
    const expected = new Map<string, string | undefined>(before.map((k) => [k, `v1 ${k}`]));
    for (const [i, key] of during.entries()) {
      const response = await put(i % 2 === 0 ? n1 : n2, key, `v2 ${key}`);
      expect(response.status, `quorum write of ${key} with n3 down: ${await response.clone().text()}`).toBe(204);
      expected.set(key, `v2 ${key}`);
    }
    for (const key of before.slice(0, 5)) {
      expect((await del(n2, key)).status).toBe(204);
      expected.set(key, undefined);
    }
    for (const key of before.slice(5, 10)) {
      expect((await put(n1, key, `v3 ${key}`)).status).toBe(204);
      expected.set(key, `v3 ${key}`);
    }
    // Every one of those writes leaves a hint for n3 on its coordinator (RF 3 over 3 nodes: no stand-in).
    // The 204 comes with two acks; a write sent to n3 before gossip saw it down is hinted when it fails, a moment later.
    const wanted = during.length + 10;
    let kept = 0;
    await until(
      async () => ((kept = await hintsKept(['n1', 'n2'])) >= wanted ? true : undefined),
      () => `expected ${wanted} hints for n3, n1 and n2 keep ${kept}`,
    );

    n3.start();
    await cluster.waitConverged();
    // Hinted handoff delivers them once n3 is alive again.
    await until(async () => ((await hintsKept(['n1', 'n2'])) === 0 ? true : undefined), () => `hints not delivered:\n${n1.describe()}`);
    const held = new Map((await localRecords(n3, 'kill/')).map((r) => [r.key, r]));
    for (const [key, value] of expected) {
      const record = held.get(key);
      expect(record, `n3 holds ${key} after handoff`).toBeDefined();
      expect(record!.tombstone ? undefined : Buffer.from(record!.value).toString(), key).toBe(value);
    }

    // Repair finds nothing left to fix, and every key reads right from n3 alone.
    const repair = await runCli(['repair', '--node', n3.url]);
    expect(repair.code, repair.stdout + repair.stderr).toBe(0);
    expect(repair.stdout).toContain('repair: in sync');
    // The restarted node said what happened: it rejoined as itself and ran the repair.
    const logs = n3.proc!.logs();
    expect(logs.find((l) => l.msg.startsWith('joined the cluster: saw '))).toBeDefined();
    expect(logs.find((l) => l.msg === 'repair finished: in sync')).toMatchObject({ inSync: true, partitions: 256 });
    for (const [key, value] of expected) expect(await get(n3, key, 'one'), key).toBe(value);
  }, 120_000);

  it('converges after a node frozen (SIGSTOP) missed writes and deletes at `one`: `hearsay repair` on each node, no delete comes back', async () => {
    const [n1, n2, n3] = [cluster.node('n1'), cluster.node('n2'), cluster.node('n3')];
    const base = keys('stop', 30);
    for (const key of base) expect((await put(n1, key, `v1 ${key}`)).status).toBe(204);

    n2.signal('SIGSTOP');
    const deleted = base.slice(0, 10);
    const overwritten = base.slice(10, 20);
    const created = keys('stop/new', 10);
    for (const [i, key] of deleted.entries()) expect((await del(i % 2 === 0 ? n1 : n3, key, 'one')).status).toBe(204);
    for (const [i, key] of overwritten.entries()) expect((await put(i % 2 === 0 ? n3 : n1, key, `v2 ${key}`, 'one')).status).toBe(204);
    for (const key of created) expect((await put(n3, key, `new ${key}`, 'one')).status).toBe(204);
    n2.signal('SIGCONT');
    await cluster.waitConverged();

    await repairEverywhere();
    const replicas = await Promise.all(cluster.nodes.map(async (n) => fingerprint(await localRecords(n, 'stop'))));
    expect(replicas[0]!.length).toBe(base.length + created.length);
    expect(replicas[1]).toEqual(replicas[0]);
    expect(replicas[2]).toEqual(replicas[0]);
    for (const node of cluster.nodes) {
      for (const key of deleted) expect(await get(node, key, 'one'), `${key} on ${node.id}`).toBeUndefined();
      for (const key of overwritten) expect(await get(node, key, 'one'), `${key} on ${node.id}`).toBe(`v2 ${key}`);
      for (const key of created) expect(await get(node, key, 'one'), `${key} on ${node.id}`).toBe(`new ${key}`);
    }
    for (const key of deleted) expect(await get(n2, key, 'all')).toBeUndefined();
  }, 120_000);
});
