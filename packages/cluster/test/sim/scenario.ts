/**
 * The deterministic simulation of a 5-node cluster: random writes and deletes
 * at random consistency levels through random nodes, while the network
 * partitions, nodes crash and restart, nodes stall, and clocks are off: every
 * node starts with its own offset and drift (within the maximum offset), and
 * faults step a clock beyond it (ahead or behind), step it within it, or set
 * it drifting fast enough to leave it, each for a while. Background repair
 * and tombstone purging run throughout (short grace period).
 *
 * While it runs:
 *   3. a node stamps a write only while its clock is within the maximum
 *      offset of a majority of the members it can reach (it is fenced
 *      otherwise: a node outside the offset stamps nothing);
 * and after healing (clocks back within the offset) and one repair pass:
 *   1. all replicas of every partition hold identical data (digests),
 *   2. every acknowledged write is present or superseded by a higher version
 *      (a key may be absent only if a tombstone above every acknowledged
 *      write of it existed: deleted keys never come back), and
 *   4. an acknowledged write is never overwritten by one that happened before
 *      it in real time: when W1 was acknowledged before W2 began, and their
 *      consistency levels overlap (W1 + W2 > RF: quorum and quorum, or either
 *      at all), W2's version is above W1's.
 *
 * HEARSAY_SIM_SEEDS=N runs N seeds (default 300 in the test); HEARSAY_SIM_SEED=S runs one.
 * A failure names its seed.
 */
import { createHash } from 'node:crypto';
import type { Consistency, RepairLine } from '@hearsay/service';
import { createRandom } from '@hearsay/sim';
import { compareVersions, versionToString, type StoredRecord, type Version } from '@hearsay/storage';
import { isReachable } from '../../src/membership.ts';
import { SimCluster } from './sim-cluster.ts';

const KEYS = Array.from({ length: 8 }, (_, i) => `key-${i}`);
const CONSISTENCY: Consistency[] = ['one', 'quorum', 'all'];
const ACKS: Record<Consistency, number> = { one: 1, quorum: 2, all: 3 };
const RF = 3;
const MAX_OFFSET_MS = 500;
/**
 * A node's clock verdict may be up to its cache age (100 ms) old when it
 * stamps; the fastest drift here (10%) moves a clock 10 ms in that time.
 */
const STAMP_SLACK_MS = 15;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

interface Acked {
  readonly key: string;
  readonly version: Version;
  readonly tombstone: boolean;
  readonly consistency: Consistency;
  /** Virtual time the client sent it, and got its acknowledgement. */
  readonly startMs: number;
  readonly ackMs: number;
  readonly via: string;
}

export interface SeedReport {
  readonly seed: number;
  readonly acked: number;
  readonly failed: number;
  readonly faults: string[];
  readonly problems: string[];
  /** Simulation events fired (a cost figure). */
  readonly events: number;
  readonly reads: number;
  /** Hash of every node's final digests, the acknowledged writes and the event count: equal for equal runs. */
  readonly fingerprint: string;
  /**
   * Mechanisms exercised (final lives of the nodes, except the guards): hints delivered, read repairs, tombstones
   * purged by the final pass, foreign keys handed over, writes stamped again past a version a replica held, writes
   * refused by a node's clock fence, records replicas refused as too far ahead, stores that refused to open on a
   * high-water mark ahead of their clock.
   */
  readonly exercised: {
    hintsDelivered: number;
    readRepairs: number;
    tombstonesPurged: number;
    foreignKeysSent: number;
    writesRestamped: number;
    clockFenceRefusals: number;
    replicaClockRefusals: number;
    clockGuardsFired: number;
  };
}

export async function runSeed(seed: number): Promise<SeedReport> {
  const seen = new Map<string, StoredRecord[]>();
  const problems: string[] = [];
  // Start clocks within the maximum offset of each other (±150 ms, ±100 ppm).
  const clockRandom = createRandom(seed ^ 0x5eed_c10c);
  const clocks: Record<string, { offsetMs: number; driftPpm: number }> = {};
  for (let i = 1; i <= 5; i++) clocks[`n${i}`] = { offsetMs: clockRandom.int(301) - 150, driftPpm: clockRandom.int(201) - 100 };
  const sim: SimCluster = new SimCluster({
    seed,
    n: 5,
    bucketBits: 6,
    clocks,
    maxClockOffsetMs: MAX_OFFSET_MS,
    // Invariant 3, at the moment of each stamp.
    onStamp: (node, version) => {
      const n = sim.node(node);
      const peers = (n.membership?.members() ?? []).filter((m) => m.id !== node && isReachable(m));
      if (peers.length === 0) return;
      const mine = sim.wallMs(node);
      const within = peers.filter((m) => sim.node(m.id).up && Math.abs(sim.wallMs(m.id) - mine) <= MAX_OFFSET_MS + STAMP_SLACK_MS).length;
      if (!(1 + within > (peers.length + 1) / 2)) {
        const offsets = peers.map((m) => `${m.id} ${Math.round(sim.wallMs(m.id) - mine)}`).join(', ');
        problems.push(`${node} stamped ${versionToString(version)} at ${sim.now - 1_700_000_000_000} while outside the maximum offset of a majority (offsets: ${offsets})`);
      }
    },
    cluster: {
      partitionBits: 4,
      replicationFactor: 3,
      requestTimeoutMs: 1000,
      peerTimeoutMs: 1000,
      handoffIntervalMs: 1000,
      hintWindowMs: 4000,
      tombstoneGraceMs: 4000,
      repairPartitionIntervalMs: 1000,
      hintsCountTowardConsistency: process.env['HEARSAY_SIM_SLOPPY'] === '1',
    },
    gossip: { reconnectIntervalMs: 2000, pushPullIntervalMs: 5000 },
    onChange: (node, record) => {
      if (process.env['HEARSAY_SIM_TRACE'] === record.key) {
        console.log(`${sim.now - 1_700_000_000_000} ${node} applied ${record.key}@${record.version.ms - 1_700_000_000_000}.${record.version.counter}.${record.version.node}${record.tombstone ? ' tombstone' : ''}`);
      }
      if (!record.tombstone) return;
      const list = seen.get(record.key) ?? [];
      list.push(record);
      seen.set(record.key, list);
    },
  });
  const rnd = sim.random.fork();
  const debug = process.env['HEARSAY_SIM_DEBUG'] !== undefined;
  const watchdog = debug
    ? setInterval(() => console.log(`[watchdog] t=${sim.now - 1_700_000_000_000} events=${sim.scheduler.fired} pending=${sim.scheduler.pending}`), 2000)
    : undefined;
  const acked: Acked[] = [];
  const faults: string[] = [];
  let failed = 0;
  let reads = 0;
  const exercised = {
    hintsDelivered: 0,
    readRepairs: 0,
    tombstonesPurged: 0,
    foreignKeysSent: 0,
    writesRestamped: 0,
    clockFenceRefusals: 0,
    replicaClockRefusals: 0,
    clockGuardsFired: 0,
  };
  const fingerprint = createHash('sha256');
  try {
    await sim.start();
    if (!(await sim.runUntilTrue(() => sim.viewsAgree(), 20_000))) problems.push('the cluster never formed');

    // Chaos: ops and faults at random virtual times.
    const chaosMs = 10_000;
    const ids = sim.nodes.map((n) => n.id);
    for (let i = 0; i < 30; i++) {
      const at = rnd.int(chaosMs);
      const key = rnd.pick(KEYS);
      const del = rnd.chance(0.25);
      const consistency = rnd.pick(CONSISTENCY);
      const via = rnd.pick(ids);
      const value = `v${i}`;
      sim.scheduler.after(at, () => {
        const node = sim.node(via);
        if (!node.up || node.cluster === undefined) return;
        const startMs = sim.now;
        const op = del
          ? node.cluster.service.delete(key, { consistency })
          : node.cluster.service.put(key, enc(value), { consistency });
        op.then(
          (r) => acked.push({ key, version: r.version, tombstone: r.tombstone, consistency, startMs, ackMs: sim.now, via }),
          () => failed++,
        );
      });
    }
    // Reads (they also drive read repair): a value read must be one some client wrote.
    const written = new Set<string>();
    for (let i = 0; i < 30; i++) written.add(`v${i}`);
    for (let i = 0; i < 12; i++) {
      const at = rnd.int(chaosMs + 3000);
      const key = rnd.pick(KEYS);
      const consistency = rnd.pick(CONSISTENCY);
      const via = rnd.pick(ids);
      sim.scheduler.after(at, () => {
        const node = sim.node(via);
        if (!node.up || node.cluster === undefined) return;
        node.cluster.service.get(key, { consistency }).then(
          (r) => {
            reads++;
            const v = r === undefined ? undefined : new TextDecoder().decode(r.value);
            if (v !== undefined && !written.has(v)) problems.push(`read of ${key} returned ${v}, which nobody wrote`);
          },
          () => undefined,
        );
      });
    }
    // Clock faults, each for a while, then set back to where the clock was: a node's clock stepped beyond the maximum
    // offset (ahead or behind), stepped within it, drifting fast enough to leave it (5-10%: 500 ms in 5-10 s), or
    // stepped ahead across a restart — then set right and restarted again, on a high-water mark from the clock ahead.
    const clockRnd = sim.random.fork();
    for (let i = 0; i < 3; i++) {
      const at = clockRnd.int(chaosMs);
      const victim = clockRnd.pick(ids);
      const kind = clockRnd.int(4);
      const lastsMs = 1000 + clockRnd.int(4000);
      const sign = clockRnd.chance(0.5) ? 1 : -1;
      const beyondMs = sign * (MAX_OFFSET_MS * 2 + clockRnd.int(2000));
      const withinMs = sign * (50 + clockRnd.int(150));
      const driftPpm = sign * (50_000 + clockRnd.int(50_001));
      sim.scheduler.after(at, () => {
        const clock = sim.node(victim).clock;
        const offset = clock.offsetAt(sim.now);
        const drift = clock.driftPpm;
        const restartSoon = (): void => {
          sim.crash(victim);
          sim.scheduler.after(300, () => void sim.restart(victim));
        };
        if (kind === 0) {
          faults.push(`${at}: clock of ${victim} stepped ${beyondMs} ms for ${lastsMs}`);
          clock.set(sim.now, offset + beyondMs, drift);
        } else if (kind === 1) {
          faults.push(`${at}: clock of ${victim} stepped ${withinMs} ms for ${lastsMs}`);
          clock.set(sim.now, offset + withinMs, drift);
        } else if (kind === 2) {
          faults.push(`${at}: clock of ${victim} drifting ${driftPpm} ppm for ${lastsMs}`);
          clock.set(sim.now, offset, driftPpm);
        } else {
          faults.push(`${at}: clock of ${victim} stepped ${Math.abs(beyondMs)} ms ahead and restarted, for ${lastsMs}, then restarted again`);
          clock.set(sim.now, offset + Math.abs(beyondMs), drift);
          restartSoon();
        }
        sim.scheduler.after(lastsMs, () => {
          clock.set(sim.now, offset, drift);
          if (kind === 3) restartSoon();
        });
      });
    }
    for (let i = 0; i < 4; i++) {
      const at = rnd.int(chaosMs);
      const kind = rnd.int(3);
      const victim = rnd.pick(ids);
      const lastsMs = 500 + rnd.int(5000);
      const shuffled = rnd.shuffle([...ids]);
      const cut = 1 + rnd.int(ids.length - 1);
      sim.scheduler.after(at, () => {
        if (kind === 0) {
          faults.push(`${at}: crash ${victim} for ${lastsMs}`);
          sim.crash(victim);
          sim.scheduler.after(lastsMs, () => void sim.restart(victim));
        } else if (kind === 1) {
          const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
          faults.push(`${at}: partition ${JSON.stringify(groups)} for ${lastsMs}`);
          sim.partition(groups);
          sim.scheduler.after(lastsMs, () => sim.heal());
        } else {
          faults.push(`${at}: stall ${victim} for ${lastsMs}`);
          sim.stall(victim, lastsMs);
        }
      });
    }
    // Every clock fault is over by then.
    await sim.runFor(chaosMs + 5000);

    // Heal: everyone back, views agree, hints delivered.
    sim.heal();
    for (const n of sim.nodes) {
      if ((await sim.runUntilSettled(sim.restart(n.id), 30_000)) === undefined) problems.push(`${n.id} did not restart`);
    }
    if (!(await sim.runUntilTrue(() => sim.viewsAgree(), 60_000))) problems.push('views never agreed after healing');
    await sim.runFor(3000);

    if (process.env['HEARSAY_SIM_TRACE'] !== undefined) console.log(`${sim.now - 1_700_000_000_000} healed`);
    // One repair pass, node by node, with background repair stopped so nothing races it.
    await sim.runUntilSettled(Promise.all(sim.nodes.map((n) => n.cluster!.antiEntropy.stop())), 30_000);
    for (const n of sim.nodes) {
      if (process.env['HEARSAY_SIM_TRACE'] !== undefined) console.log(`${sim.now - 1_700_000_000_000} repair pass on ${n.id}`);
      const lines: RepairLine[] = [];
      const run = (async () => {
        for await (const l of n.cluster!.service.repair({})) lines.push(l);
      })();
      const done = await sim.runUntilSettled(run, 120_000);
      const summary = lines.at(-1);
      if (summary?.type === 'summary') {
        exercised.tombstonesPurged += Number(summary['tombstonesPurged'] ?? 0);
        exercised.foreignKeysSent += Number(summary['foreignKeysSent'] ?? 0);
      }
      if (done === undefined || summary?.type !== 'summary' || !summary.inSync) {
        problems.push(`repair on ${n.id} did not complete in sync: ${JSON.stringify(summary)}`);
      }
    }

    // 1. Replicas identical, partition by partition.
    const map = sim.nodes[0]!.cluster!.service.partitionMap;
    for (const n of sim.nodes) {
      const other = n.cluster!.service.partitionMap;
      if (other.members.join() !== map.members.join()) problems.push(`${n.id} has another ring: ${other.members.join()}`);
    }
    for (let p = 0; p < map.partitionCount; p++) {
      const { fromBucket, toBucket } = map.bucketRange(p, 6);
      const digests = new Map<string, string>();
      for (const id of map.preferenceList(p)) {
        const d = await sim.node(id).store!.bucketDigests(fromBucket, toBucket);
        digests.set(id, Buffer.concat(d).toString('hex'));
      }
      if (new Set(digests.values()).size !== 1) {
        const detail: string[] = [];
        for (const id of map.preferenceList(p)) {
          const page = await sim.node(id).store!.scan({ includeTombstones: true, limit: 1000 });
          const here = page.records.filter((r) => sim.nodes[0]!.cluster!.service.partitionOf(r.key) === p);
          detail.push(`${id}: ${here.map((r) => `${r.key}@${r.version.ms - 1_700_000_000_000}.${r.version.counter}.${r.version.node}${r.tombstone ? '†' : ''}`).join(' ')}`);
        }
        problems.push(`partition ${p}: replicas differ\n  ${detail.join('\n  ')}`);
      }
    }

    for (const n of sim.nodes) {
      for (const d of await n.store!.bucketDigests(0, 64)) fingerprint.update(d);
      const counters = n.cluster!.service.counters;
      exercised.hintsDelivered += n.cluster!.hints.stats().delivered;
      exercised.readRepairs += counters.readRepairs;
      exercised.writesRestamped += counters.writesRestamped;
      exercised.replicaClockRefusals += counters.replicaClockRefusals;
      const refusals = n.cluster!.clockFence.refusals;
      exercised.clockFenceRefusals += refusals.skewed + refusals.unverified + refusals.ahead;
    }
    exercised.clockGuardsFired = sim.clockGuardsFired.length;
    fingerprint.update(JSON.stringify(acked));
    fingerprint.update(String(sim.scheduler.fired));

    // 2. Every acknowledged write present or superseded; deleted keys stay deleted.
    for (const key of KEYS) {
      const mine = acked.filter((a) => a.key === key);
      if (mine.length === 0) continue;
      const top = mine.reduce((a, b) => (compareVersions(a.version, b.version) >= 0 ? a : b));
      const svc = sim.nodes[0]!.cluster!.service;
      for (const id of map.preferenceList(svc.partitionOf(key))) {
        const r = await sim.node(id).store!.getRecord(key);
        if (r === undefined) {
          // Purged: fine only if a tombstone at or above every acknowledged write existed.
          const tomb = (seen.get(key) ?? []).some((t) => compareVersions(t.version, top.version) >= 0);
          if (!tomb) problems.push(`${key} on ${id}: acknowledged ${JSON.stringify(top)} is missing and no tombstone covers it`);
        } else if (compareVersions(r.version, top.version) < 0) {
          problems.push(`${key} on ${id}: holds ${JSON.stringify(r.version)} below acknowledged ${JSON.stringify(top)}`);
        }
      }
    }

    // 4. Real-time order: a write acknowledged before another began is below it, where their levels overlap.
    if (process.env['HEARSAY_SIM_SLOPPY'] !== '1') {
      for (const w1 of acked) {
        for (const w2 of acked) {
          if (w1.key !== w2.key || !(w1.ackMs < w2.startMs) || ACKS[w1.consistency] + ACKS[w2.consistency] <= RF) continue;
          if (compareVersions(w2.version, w1.version) <= 0) {
            problems.push(
              `${w1.key}: ${w2.consistency} write ${versionToString(w2.version)} through ${w2.via} at ${w2.startMs - 1_700_000_000_000} is not above ` +
                `${w1.consistency} write ${versionToString(w1.version)} through ${w1.via} acknowledged at ${w1.ackMs - 1_700_000_000_000}`,
            );
          }
        }
      }
    }
  } finally {
    if (watchdog !== undefined) clearInterval(watchdog);
    if (process.env['HEARSAY_SIM_TRACE'] !== undefined) console.log(sim.errors.join('\n'));
    await sim.close();
  }
  return { seed, acked: acked.length, failed, faults, problems, events: sim.scheduler.fired, reads, fingerprint: fingerprint.digest('hex'), exercised };
}

