/**
 * The topology's operator actions and self-protection, on the simulated
 * cluster (virtual time): what decommission and remove refuse, a
 * decommission taken back, a replacement of an id nobody owns, an empty data
 * dir started with a member's id, a removed node that comes back, and a
 * restart that sees part of the cluster keeping RF.
 */
import { describe, expect, it } from 'vitest';
import { SimCluster } from './sim/sim-cluster.ts';
import type { TopologyExit } from '../src/topology.ts';

const CONFIG = { partitionBits: 4, replicationFactor: 3, requestTimeoutMs: 1000, peerTimeoutMs: 1000, ringSyncIntervalMs: 200 };

async function formed(n: number, exits: Map<string, TopologyExit> = new Map()): Promise<SimCluster> {
  const sim = new SimCluster({ seed: 7, n, bucketBits: 6, topology: true, cluster: CONFIG, onExit: (id, e) => exits.set(id, e) });
  await sim.start();
  const ok = await sim.runUntilTrue(
    () =>
      sim.nodes.every((x) => {
        const t = x.cluster?.topology;
        return t !== undefined && t.notServing() === undefined && t.placement().change === undefined && t.placement().owners.length === n;
      }),
    60_000,
  );
  expect(ok, 'the cluster formed').toBe(true);
  return sim;
}

async function settle<T>(sim: SimCluster, p: Promise<T>): Promise<T> {
  const r = await sim.runUntilSettled(p, 10_000);
  if (r === undefined) throw new Error('did not settle');
  return r.value;
}

async function refusal(sim: SimCluster, p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  const caught = p.then(
    () => ({ code: 'NONE', message: 'accepted' }),
    (e: { code?: string; message: string }) => e,
  );
  return settle(sim, caught);
}

describe('topology operations', () => {
  it('refuses what would lose copies or makes no sense, with the code a client can act on', async () => {
    const sim = await formed(3);
    try {
      const n1 = sim.node('n1').cluster!.service;
      expect(await refusal(sim, n1.admin!({ type: 'decommission', abort: false }))).toMatchObject({ code: 'BELOW_REPLICATION_FACTOR' });
      expect(await refusal(sim, n1.admin!({ type: 'decommission', abort: true }))).toMatchObject({ code: 'CONFLICT' });
      expect(await refusal(sim, n1.admin!({ type: 'remove', node: 'n9' }))).toMatchObject({ code: 'UNKNOWN_MEMBER' });
      expect(await refusal(sim, n1.admin!({ type: 'remove', node: 'n2' }))).toMatchObject({ code: 'MEMBER_ALIVE' });
      expect(await refusal(sim, n1.admin!({ type: 'remove', node: 'n1' }))).toMatchObject({ code: 'CONFLICT' });
      // Nothing changed.
      expect(sim.node('n2').cluster!.topology!.placement().change).toBeUndefined();
    } finally {
      await sim.close();
    }
  });

  it('a decommission taken back: the node owns its partitions again and keeps serving', async () => {
    const sim = await formed(4);
    try {
      const n4 = sim.node('n4').cluster!;
      // The abort is asked for in the same instant of virtual time: before the gate can pass.
      const report = await settle(sim, n4.service.admin!({ type: 'decommission', abort: false }));
      expect((report['change'] as { kind: string; member: string }).kind).toBe('decommission');
      expect(n4.topology!.statusOf('n4')).toBe('leaving');
      await settle(sim, n4.service.admin!({ type: 'decommission', abort: true }));
      expect(n4.topology!.statusOf('n4')).toBe('normal');
      expect(await sim.runUntilTrue(() => sim.nodes.every((x) => x.cluster!.topology!.statusOf('n4') === 'normal' && x.cluster!.topology!.placement().change === undefined), 30_000)).toBe(true);
      expect(n4.topology!.notServing()).toBeUndefined();
      expect(sim.node('n1').cluster!.topology!.placement().owners).toContain('n4');
    } finally {
      await sim.close();
    }
  });

  it('a node removed while it was down stops when it comes back; an empty data dir with a member id stops unless it replaces', async () => {
    const exits = new Map<string, TopologyExit>();
    const sim = await formed(4, exits);
    try {
      sim.crash('n4');
      const n1 = sim.node('n1').cluster!.service;
      expect(await sim.runUntilTrue(() => sim.node('n1').membership!.members().find((m) => m.id === 'n4')?.state === 'dead', 60_000)).toBe(true);
      await settle(sim, n1.admin!({ type: 'remove', node: 'n4' }));
      expect(await sim.runUntilTrue(() => sim.node('n1').cluster!.topology!.statusOf('n4') === 'removed', 60_000)).toBe(true);
      await settle(sim, sim.restart('n4'));
      expect(await sim.runUntilTrue(() => exits.has('n4'), 30_000)).toBe(true);
      expect(exits.get('n4')?.code).toBe('REMOVED');

      // n3's disk is lost and it is started again as n3 without --replace: it must not serve.
      await sim.wipeForReplacement('n3');
      sim.node('n3').replace = false;
      await settle(sim, sim.restart('n3'));
      expect(await sim.runUntilTrue(() => exits.has('n3'), 30_000)).toBe(true);
      expect(exits.get('n3')?.code).toBe('ID_IN_USE');
    } finally {
      await sim.close();
    }
  });

  it('a replacement of an owner answers no read until it is filled, then serves what the old node held', async () => {
    const exits = new Map<string, TopologyExit>();
    const sim = await formed(3, exits);
    try {
      await settle(sim, sim.node('n1').cluster!.service.put('kept', new TextEncoder().encode('v'), { consistency: 'all' }));
      await sim.wipeForReplacement('n2');
      await settle(sim, sim.restart('n2'));
      const n2 = sim.node('n2').cluster!;
      expect(n2.topology!.notServing()).toMatch(/^replacing n2|waiting/);
      expect(n2.topology!.notReadable(['kept'])).toMatch(/^replacing n2/);
      expect(await sim.runUntilTrue(() => n2.topology!.notServing() === undefined, 60_000)).toBe(true);
      expect(n2.topology!.notReadable(['kept'])).toBeUndefined();
      expect(new TextDecoder().decode((await sim.node('n2').store!.getRecord('kept'))!.value)).toBe('v');
      // Ownership did not move: the same three owners, n2 with its new data dir.
      expect(sim.node('n1').cluster!.topology!.placement().owners).toEqual(['n1', 'n2', 'n3']);
      expect(exits.size).toBe(0);
    } finally {
      await sim.close();
    }
  });

  it('a restart that sees one peer still places every partition on RF owners', async () => {
    const sim = await formed(5);
    try {
      sim.crash('n5');
      sim.partition([['n1', 'n5'], ['n2', 'n3', 'n4']]);
      await settle(sim, sim.restart('n5'));
      expect(await sim.runUntilTrue(() => sim.node('n5').cluster!.topology!.notServing() === undefined, 30_000)).toBe(true);
      const placement = sim.node('n5').cluster!.topology!.placement();
      expect(placement.owners).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
      for (let p = 0; p < placement.partitionCount; p++) expect(placement.sets(p).old).toHaveLength(3);
      // A key with two of its three owners on the other side: a quorum write through n5 is refused, not acknowledged by fewer.
      const service = sim.node('n5').cluster!.service;
      const key = Array.from({ length: 200 }, (_, i) => `k${i}`).find((k) => placement.sets(service.partitionOf(k)).old.filter((id) => id === 'n1' || id === 'n5').length <= 1)!;
      const outcome = await refusal(sim, service.put(key, new Uint8Array([1]), { consistency: 'quorum' }));
      expect(['INSUFFICIENT_REPLICAS', 'TIMEOUT']).toContain(outcome.code);
    } finally {
      await sim.close();
    }
  });
});
