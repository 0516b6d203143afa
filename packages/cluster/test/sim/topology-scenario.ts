/**
 * The deterministic simulation of membership changes (issue 16): a cluster
 * of 3 or 4 nodes running the topology (docs/topology.md) takes random
 * writes, deletes and quorum reads while nodes join, decommission, crash for
 * good and are removed, or are replaced by an empty node with the same id —
 * with crashes and restarts, partitions and stalls mixed in. Then it heals,
 * waits for every change to finish, runs one repair pass, and checks:
 *
 *   1. no acknowledged write is lost: every owner of a key holds it or a
 *      newer version;
 *   2. no quorum read misses a write acknowledged before it started, or
 *      returns an older version than such a write;
 *   3. every key is on exactly RF nodes, the owners of its partition (read
 *      from each store directly);
 *   4. the owners of each partition hold identical data.
 *
 * HEARSAY_TOPOLOGY_SIM_SEEDS=N runs N seeds; HEARSAY_TOPOLOGY_SIM_SEED=S runs one;
 * HEARSAY_SIM_TRACE=<key> prints that key's history. A failure names its seed.
 */
import { createHash } from 'node:crypto';
import type { Consistency, RepairLine } from '@hearsay/service';
import { compareVersions, type StoredRecord, type Version } from '@hearsay/storage';
import { SimCluster, type SimNode } from './sim-cluster.ts';

const KEYS = Array.from({ length: 20 }, (_, i) => `key-${i}`);
const RF = 3;
const BUCKET_BITS = 6;
const START_MS = 1_700_000_000_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

interface Acked {
  readonly key: string;
  readonly version: Version;
  readonly tombstone: boolean;
  /** Order of the acknowledgement among acknowledgements and read starts. */
  readonly seq: number;
}

interface QuorumRead {
  readonly key: string;
  readonly via: string;
  readonly startSeq: number;
  readonly startMs: number;
  /** The record answered (undefined: 404). */
  readonly result: StoredRecord | undefined;
}

export interface TopologySeedReport {
  readonly seed: number;
  readonly acked: number;
  readonly failed: number;
  readonly quorumReads: number;
  readonly operations: string[];
  readonly problems: string[];
  readonly events: number;
  /** Hash of every node's final digests, the acknowledged writes and the event count: equal for equal runs. */
  readonly fingerprint: string;
  /** Changes that committed, by kind. */
  readonly committed: { join: number; decommission: number; remove: number; replace: number };
}

const fmtVersion = (v: Version): string => `${v.ms - START_MS}.${v.counter}.${v.node}`;

export async function runTopologySeed(seed: number): Promise<TopologySeedReport> {
  const tombstones = new Map<string, Version[]>();
  const trace = process.env['HEARSAY_SIM_TRACE'];
  const operations: string[] = [];
  const problems: string[] = [];
  const committed = { join: 0, decommission: 0, remove: 0, replace: 0 };
  let sim!: SimCluster;
  const log = (what: string): void => {
    operations.push(`${sim.now - START_MS}: ${what}`);
    if (trace !== undefined) console.log(`${sim.now - START_MS} ${what}`);
  };
  const initial = 3 + (seed % 2);
  sim = new SimCluster({
    seed,
    n: initial,
    bucketBits: BUCKET_BITS,
    topology: true,
    cluster: {
      partitionBits: 4,
      replicationFactor: RF,
      requestTimeoutMs: 1000,
      peerTimeoutMs: 1000,
      // A replica that missed writes stays behind for seconds: hints wait, and reads do not repair it.
      // Quorums alone must keep reads fresh through every change (R + W > RF needs no read repair).
      handoffIntervalMs: 5000,
      readRepair: false,
      hintWindowMs: 600_000,
      // No purge in this run: a key's presence on its owners is what check 3 counts.
      tombstoneGraceMs: 3_600_000,
      repairPartitionIntervalMs: 1000,
      ringSyncIntervalMs: 200,
      // Slow streaming (a record or two a second): a join or removal takes seconds, so reads and writes meet it mid-way.
      streamRateLimitBytesPerSec: 200,
    },
    gossip: { reconnectIntervalMs: 2000, pushPullIntervalMs: 5000 },
    onChange: (node, record) => {
      if (trace === record.key) console.log(`${sim.now - START_MS} ${node} applied ${record.key}@${fmtVersion(record.version)}${record.tombstone ? ' tombstone' : ''}`);
      if (!record.tombstone) return;
      const list = tombstones.get(record.key) ?? [];
      list.push(record.version);
      tombstones.set(record.key, list);
    },
    onExit: (node, exit) => {
      log(`${node} exits: ${exit.code}`);
      if (exit.code === 'DECOMMISSIONED') committed.decommission++;
    },
  });
  // Replicas answer at different speeds (up to 40 ms apart): a write is acknowledged by the fastest W, the rest lag.
  sim.nodeNet.setDefaults({ delayMs: 1, jitterMs: 40 });
  const rnd = sim.random.fork();
  const acked: Acked[] = [];
  const reads: QuorumRead[] = [];
  let seq = 0;
  let failed = 0;
  const fingerprint = createHash('sha256');
  const serving = (n: SimNode): boolean => n.up && n.cluster !== undefined && n.cluster.topology?.notServing() === undefined;
  const servingNodes = (): SimNode[] => sim.nodes.filter(serving);
  /** Every up node serves, no change is active, and every up node holds the same ring. */
  const settled = (): boolean => {
    const up = sim.nodes.filter((n) => !n.gone);
    if (up.some((n) => !n.up || !serving(n))) return false;
    const hashes = new Set(up.map((n) => n.membership!.members().find((m) => m.id === n.id)?.ring));
    if (hashes.size !== 1 || up.some((n) => n.cluster!.topology!.placement().change !== undefined)) return false;
    // A node crashed for good is no owner once its removal went through (a replaced one is up again).
    const owners = up[0]!.cluster!.topology!.placement().owners;
    return sim.nodes.every((n) => !n.gone || !owners.includes(n.id));
  };

  try {
    await sim.start();
    if (!(await sim.runUntilTrue(settled, 60_000))) problems.push('the cluster never formed');
    log(`formed: ${servingNodes().map((n) => n.id).join(',')}`);

    const chaosMs = 16_000;
    const ownersNow = (): string[] => {
      const any = servingNodes()[0];
      return any === undefined ? [] : [...any.cluster!.topology!.placement().owners];
    };

    /** A quorum read through a serving node chosen by `pick` (any number; taken modulo the count). */
    const quorumRead = (key: string, pick: number): void => {
      const nodes = servingNodes();
      const node = nodes[Math.floor(pick * 1000) % Math.max(1, nodes.length)];
      if (node === undefined) return;
      const startSeq = ++seq;
      const startMs = sim.now;
      node.cluster!.service.get(key, { consistency: 'quorum' }).then(
        (result) => reads.push({ key, via: node.id, startSeq, startMs, result }),
        () => undefined,
      );
    };

    // Client operations through random serving nodes.
    for (let i = 0; i < 100; i++) {
      const at = rnd.int(chaosMs);
      const key = rnd.pick(KEYS);
      const del = rnd.chance(0.2);
      const consistency: Consistency = rnd.chance(0.8) ? 'quorum' : rnd.pick(['one', 'all'] as const);
      const pick = rnd.next();
      const readBack = rnd.chance(0.6);
      const value = `v${i}`;
      sim.scheduler.after(at, () => {
        const nodes = servingNodes();
        const node = nodes[Math.floor(pick * nodes.length)];
        if (node === undefined) return;
        const op = del ? node.cluster!.service.delete(key, { consistency }) : node.cluster!.service.put(key, enc(value), { consistency });
        op.then(
          (r) => {
            // `one` writes may be lost with the one replica that took them (documented): only quorum and all count.
            if (consistency !== 'one') acked.push({ key, version: r.version, tombstone: r.tombstone, seq: ++seq });
            if (trace === key) console.log(`${sim.now - START_MS} acked ${key}@${fmtVersion(r.version)} via ${node.id} at ${consistency}`);
            // Read it back at once through another node: the lagging replica has not got it yet.
            if (readBack) quorumRead(key, pick * 7919);
          },
          () => failed++,
        );
      });
    }
    for (let i = 0; i < 100; i++) {
      const at = rnd.int(chaosMs + 4000);
      const key = rnd.pick(KEYS);
      const pick = rnd.next();
      sim.scheduler.after(at, () => quorumRead(key, pick));
    }
    // And every key every 500 ms, so each moment of a change is read.
    for (let at = 250; at < chaosMs + 4000; at += 500) {
      const picks = KEYS.map(() => rnd.next());
      sim.scheduler.after(at, () => KEYS.forEach((key, i) => quorumRead(key, picks[i]!)));
    }

    // Membership changes: three of join, decommission, remove, replace (a join instead when too few owners are left to shrink).
    const kinds = rnd.shuffle(['join', 'decommission', 'remove', 'replace'] as const).slice(0, 3);
    kinds.forEach((planned, k) => {
      const at = 500 + k * 4500 + rnd.int(3000);
      const pick = rnd.next();
      sim.scheduler.after(at, () => {
        const owners = ownersNow();
        const candidates = sim.nodes.filter((n) => !n.gone && n.up && owners.includes(n.id));
        const victim = candidates[Math.floor(pick * candidates.length)];
        const shrinks = planned === 'decommission' || planned === 'remove';
        const kind = shrinks && owners.length <= RF ? 'join' : planned;
        if (kind === 'join') {
          log('join of a new node');
          void sim.addNode().then((n) => log(`${n.id} started`));
          return;
        }
        if (victim === undefined) {
          log(`${kind} skipped: no owner up`);
          return;
        }
        if (kind === 'decommission') {
          log(`decommission of ${victim.id}`);
          victim.cluster!.service.admin!({ type: 'decommission', abort: false }).then(
            () => log(`decommission of ${victim.id} accepted`),
            (e: unknown) => log(`decommission of ${victim.id} refused: ${(e as Error).message}`),
          );
        } else if (kind === 'remove') {
          log(`${victim.id} crashes for good`);
          victim.gone = true;
          sim.crash(victim.id);
          void removeWhenDown(victim.id);
        } else {
          log(`${victim.id} loses its disk; replaced in 2 s`);
          void sim.wipeForReplacement(victim.id).then(() => {
            sim.scheduler.after(2000, () => {
              log(`${victim.id} starts with --replace`);
              void sim.restart(victim.id);
              committed.replace++;
            });
          });
        }
      });
    });
    /** `hearsay remove` through a serving node, again every 500 ms until gossip reports the member down. */
    const removeWhenDown = async (id: string): Promise<void> => {
      for (let attempt = 0; attempt < 200; attempt++) {
        await new Promise<void>((resolve) => sim.scheduler.after(500, () => resolve()));
        const via = servingNodes().find((n) => n.id !== id);
        if (via === undefined) continue;
        try {
          await via.cluster!.service.admin!({ type: 'remove', node: id });
          log(`removal of ${id} accepted by ${via.id}`);
          committed.remove++;
          return;
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code !== 'MEMBER_ALIVE' && code !== 'UNAVAILABLE') {
            log(`removal of ${id} refused: ${(e as Error).message}`);
            return;
          }
        }
      }
      problems.push(`the removal of ${id} was never accepted`);
    };

    // Slow replicas (one or two): writes reach them hundreds of ms after the others acknowledged them.
    for (let i = 0; i < 6; i++) {
      const at = rnd.int(chaosMs);
      const lastsMs = 1000 + rnd.int(3000);
      const delayMs = 100 + rnd.int(600);
      const pick = rnd.next();
      const two = rnd.chance(0.5);
      sim.scheduler.after(at, () => {
        const live = sim.nodes.filter((n) => n.up && !n.gone);
        const first = Math.floor(pick * live.length);
        const victims = [live[first], two ? live[(first + 1) % live.length] : undefined].filter((n): n is SimNode => n !== undefined);
        if (victims.length === 0) return;
        log(`${victims.map((v) => v.id).join(' and ')} slow (+${delayMs} ms) for ${lastsMs} ms`);
        const links = (params: { delayMs: number; jitterMs: number }): void => {
          for (const victim of victims) for (const other of sim.nodes) if (other !== victim) sim.nodeNet.setLink(other.nodeAddress, victim.nodeAddress, params);
        };
        links({ delayMs, jitterMs: 40 });
        sim.scheduler.after(lastsMs, () => links({ delayMs: 1, jitterMs: 40 }));
      });
    }

    // Replicas that miss writes: cut off from the internode network (gossip still sees them alive) for a moment.
    for (let i = 0; i < 6; i++) {
      const at = rnd.int(chaosMs);
      const lastsMs = 300 + rnd.int(1500);
      const pick = rnd.next();
      const two = rnd.chance(0.5);
      sim.scheduler.after(at, () => {
        const live = sim.nodes.filter((n) => n.up && !n.gone);
        const first = Math.floor(pick * live.length);
        const cut = [live[first], two ? live[(first + 1) % live.length] : undefined].filter((n): n is SimNode => n !== undefined);
        if (cut.length === 0) return;
        log(`${cut.map((n) => n.id).join(' and ')} miss writes for ${lastsMs} ms`);
        const known = new Set(sim.nodeNet.addresses());
        const rest = sim.nodes.filter((n) => !cut.includes(n) && known.has(n.nodeAddress));
        sim.nodeNet.partition([cut.map((n) => n.nodeAddress), rest.map((n) => n.nodeAddress)]);
        sim.scheduler.after(lastsMs, () => sim.nodeNet.heal());
      });
    }

    // Faults: a crash and restart, a partition, a stall.
    for (let i = 0; i < 3; i++) {
      const at = rnd.int(chaosMs);
      const kind = rnd.int(3);
      const lastsMs = 500 + rnd.int(3000);
      const pick = rnd.next();
      const cut = rnd.next();
      sim.scheduler.after(at, () => {
        const live = sim.nodes.filter((n) => n.up && !n.gone);
        const victim = live[Math.floor(pick * live.length)];
        if (victim === undefined) return;
        if (kind === 0) {
          log(`crash ${victim.id} for ${lastsMs} ms`);
          sim.crash(victim.id);
          sim.scheduler.after(lastsMs, () => void sim.restart(victim.id));
        } else if (kind === 1) {
          const ids = rnd.shuffle(live.map((n) => n.id));
          const at2 = 1 + Math.floor(cut * (ids.length - 1));
          const groups = [ids.slice(0, at2), ids.slice(at2)];
          log(`partition ${JSON.stringify(groups)} for ${lastsMs} ms`);
          sim.partition(groups);
          sim.scheduler.after(lastsMs, () => sim.heal());
        } else {
          log(`stall ${victim.id} for ${lastsMs} ms`);
          sim.stall(victim.id, lastsMs);
        }
      });
    }
    await sim.runFor(chaosMs + 5000);

    // Heal: everyone who is not gone back up, every change done.
    sim.heal();
    for (const n of sim.nodes) if (!n.gone && !n.up) await sim.runUntilSettled(sim.restart(n.id), 30_000);
    if (!(await sim.runUntilTrue(settled, 180_000))) {
      const states = sim.nodes.map((n) => `${n.id}: ${n.gone ? 'gone' : !n.up ? 'down' : n.cluster?.topology?.notServing() ?? `serving, change ${n.cluster?.topology?.placement().change?.key ?? 'none'}`}`);
      problems.push(`the membership changes never finished:\n  ${states.join('\n  ')}`);
      return report();
    }
    log(`settled: owners ${ownersNow().join(',')}`);
    // Hints delivered, then one repair pass node by node with background repair stopped (it also hands off and drops foreign data).
    await sim.runFor(3000);
    const live = sim.nodes.filter((n) => n.up && !n.gone);
    await sim.runUntilSettled(Promise.all(live.map((n) => n.cluster!.antiEntropy.stop())), 30_000);
    for (const n of live) {
      const lines: RepairLine[] = [];
      const run = (async () => {
        for await (const l of n.cluster!.service.repair({})) lines.push(l);
      })();
      const done = await sim.runUntilSettled(run, 120_000);
      const summary = lines.at(-1);
      if (done === undefined || summary?.type !== 'summary' || !summary.inSync) {
        problems.push(`repair on ${n.id} did not complete in sync: ${JSON.stringify(summary)}`);
      }
    }

    const placement = live[0]!.cluster!.topology!.placement();
    const owner = (id: string): SimNode & { store: NonNullable<SimNode['store']> } => {
      const n = sim.node(id);
      if (n.store === undefined) throw new Error(`owner ${id} is not up`);
      return n as SimNode & { store: NonNullable<SimNode['store']> };
    };
    for (const n of live) {
      if (n.cluster!.topology!.placement().epoch !== placement.epoch) problems.push(`${n.id} has another placement`);
    }
    if (placement.change !== undefined) problems.push(`a change is still active: ${placement.change.key}`);
    const partitionOf = (key: string): number => live[0]!.cluster!.service.partitionOf(key);

    // 1. Every acknowledged write on every owner, or superseded there.
    for (const key of KEYS) {
      const mine = acked.filter((a) => a.key === key);
      if (mine.length === 0) continue;
      const top = mine.reduce((a, b) => (compareVersions(a.version, b.version) >= 0 ? a : b));
      for (const id of placement.sets(partitionOf(key)).old) {
        const r = await owner(id).store.getRecord(key);
        if (r === undefined || compareVersions(r.version, top.version) < 0) {
          problems.push(`lost: ${key} on ${id} holds ${r === undefined ? 'nothing' : fmtVersion(r.version)}, below acknowledged ${fmtVersion(top.version)}`);
        }
      }
    }

    // 2. No quorum read older than a write acknowledged before it started.
    for (const read of reads) {
      const before = acked.filter((a) => a.key === read.key && a.seq < read.startSeq);
      if (before.length === 0) continue;
      const top = before.reduce((a, b) => (compareVersions(a.version, b.version) >= 0 ? a : b));
      const got = read.result;
      if (got !== undefined) {
        if (compareVersions(got.version, top.version) < 0) {
          problems.push(`stale read: ${read.key} via ${read.via} at ${read.startMs - START_MS} answered ${fmtVersion(got.version)}, below acknowledged ${fmtVersion(top.version)}`);
        }
      } else if (!top.tombstone) {
        // A 404 is right only if a delete at or above the acknowledged write was applied somewhere.
        const shadowed = (tombstones.get(read.key) ?? []).some((v) => compareVersions(v, top.version) >= 0);
        if (!shadowed) problems.push(`stale read: ${read.key} via ${read.via} at ${read.startMs - START_MS} answered 404, but ${fmtVersion(top.version)} was acknowledged`);
      }
    }

    // 3. Every key on exactly its RF owners.
    // A key with no acknowledged write may be on no node: its only copies can be lost with a disk (a write that failed).
    const acknowledged = new Set(acked.map((a) => a.key));
    for (const key of KEYS) {
      const holders: string[] = [];
      for (const n of live) if ((await n.store!.getRecord(key)) !== undefined) holders.push(n.id);
      const owners = [...placement.sets(partitionOf(key)).old].sort();
      const onSome = holders.length > 0 || acknowledged.has(key);
      if (onSome && holders.sort().join(',') !== owners.join(',')) {
        problems.push(`${key} is on ${holders.join(',') || 'no node'}, its owners are ${owners.join(',')}`);
      }
    }

    // 4. The owners of each partition hold the same data.
    for (let p = 0; p < placement.partitionCount; p++) {
      const { fromBucket, toBucket } = placement.current.bucketRange(p, BUCKET_BITS);
      const digests = new Set<string>();
      for (const id of placement.sets(p).old) digests.add(Buffer.concat(await owner(id).store.bucketDigests(fromBucket, toBucket)).toString('hex'));
      if (digests.size > 1) problems.push(`partition ${p}: its owners differ`);
    }

    for (const n of live) for (const d of await n.store!.bucketDigests(0, 2 ** BUCKET_BITS)) fingerprint.update(d);
    fingerprint.update(JSON.stringify(acked.map((a) => [a.key, a.version])));
    fingerprint.update(String(sim.scheduler.fired));
    committed.join = sim.nodes.length - initial;
  } finally {
    if (trace !== undefined) console.log(sim.errors.join('\n'));
    await sim.close();
  }
  return report();

  function report(): TopologySeedReport {
    return {
    seed,
    acked: acked.length,
    failed,
    quorumReads: reads.length,
    operations,
    problems,
    events: sim.scheduler.fired,
    fingerprint: fingerprint.digest('hex'),
    committed,
    };
  }
}
