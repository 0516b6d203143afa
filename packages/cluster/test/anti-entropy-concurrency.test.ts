/**
 * An on-demand repair run repairs several partitions at once (bounded by
 * manualConcurrency), holds background repair off while it runs, never
 * leaves the lock held when its reader walks away, and is counted in the
 * repair metrics.
 */
import { MemoryLevel } from 'memory-level';
import { describe, expect, it } from 'vitest';
import { openStore, type LevelLike } from '@hearsay/storage';
import { AntiEntropy, type RangeRepairRequest } from '../src/anti-entropy.ts';
import { StaticMembership, type MemberInfo } from '../src/membership.ts';
import { computePartitionMap } from '../src/partition-map.ts';
import type { PeerFactory } from '../src/peer.ts';
import type { Clock } from '@hearsay/clock';
import { emptyRepairStats, type RepairResult } from '@hearsay/repair';

const member = (id: string): MemberInfo => ({ id, state: 'alive', http: `http://${id}`, gossip: '', incarnation: 1 });

/** Time stands still (no purge: the cut-off is never above 0); no timer ever fires. */
const stillClock: Clock = { now: () => 0, setTimer: () => () => undefined };

interface Gate {
  readonly started: RangeRepairRequest[];
  open(): void;
}

async function setup(manualConcurrency: number): Promise<{ ae: AntiEntropy; gate: Gate; maxRunning: () => number; partitions: number }> {
  const store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'n1', bucketBits: 8 });
  const membership = new StaticMembership('n1', [member('n1'), member('n2'), member('n3')]);
  const map = computePartitionMap(['n1', 'n2', 'n3'], { partitionBits: 4 });
  let running = 0;
  let most = 0;
  let opened = false;
  const waiting: (() => void)[] = [];
  const started: RangeRepairRequest[] = [];
  const repairRange = async (request: RangeRepairRequest): Promise<RepairResult> => {
    started.push(request);
    running++;
    most = Math.max(most, running);
    if (!opened) await new Promise<void>((resolve) => waiting.push(resolve));
    await Promise.resolve();
    running--;
    const { fromBucket, toBucket } = request;
    return { fromBucket, toBucket, inSync: false, cutoffMs: 0, stats: { ...emptyRepairStats(), bucketsCompared: toBucket - fromBucket, keysSent: request.partition + 1, bytesSent: 10, bytesReceived: 7 } };
  };
  const ae = new AntiEntropy({
    store, membership, clock: stillClock, partitionMap: () => map, repairRange,
    // The fake sessions never call the peer; purge (the only other use) never runs with time at 0.
    peers: (() => ({})) as unknown as PeerFactory,
    config: { manualConcurrency },
  });
  const gate: Gate = { started, open: () => { opened = true; for (const w of waiting.splice(0)) w(); } };
  return { ae, gate, maxRunning: () => most, partitions: map.partitionsOf('n1').length };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

describe('on-demand repair concurrency', () => {
  it('runs up to manualConcurrency partitions at once and reports every one', async () => {
    const { ae, gate, maxRunning, partitions } = await setup(4);
    expect(partitions).toBe(16); // RF 3 of 3 members: every partition
    const lines = (async () => {
      const out = [];
      for await (const line of ae.runAll()) out.push(line);
      return out;
    })();
    await settle();
    // Four partitions started (each with its first replica), none finished yet.
    expect(gate.started).toHaveLength(4);
    expect(new Set(gate.started.map((r) => r.partition)).size).toBe(4);
    gate.open();
    const all = await lines;
    expect(maxRunning()).toBe(4);
    expect(all.filter((l) => l.type === 'progress')).toHaveLength(16);
    expect(all.at(-1)).toMatchObject({ type: 'summary', inSync: true, partitions: 16, rangesCompared: 32 });
    // The sessions' own stats, summed: two sessions (the other two replicas) per partition.
    for (const line of all) if (line.type === 'progress') expect(line.keysSent).toBe(2 * ((line['partition'] as number) + 1));
    expect(all.at(-1)).toMatchObject({ keysSent: 16 * 17, keysReceived: 0, bytesSent: 32 * 10, bytesReceived: 32 * 7 });
    expect(new Set(gate.started.map((r) => r.partition)).size).toBe(16);
    // And /metrics counts it.
    const text = ae.metrics();
    expect(text).toContain('hearsay_repair_sessions_total{outcome="ok"} 32');
    expect(text).toContain('hearsay_repair_sessions_total{outcome="failed"} 0');
    expect(text).toContain('hearsay_repair_bytes_total{direction="sent"} 320');
    expect(text).toContain('hearsay_repair_partitions_total{trigger="manual"} 16');
    expect(text).toContain('hearsay_repair_runs_total{result="in_sync"} 1');
    expect(text).toMatch(/^# TYPE hearsay_repair_last_run_timestamp_seconds gauge$/m);
  });

  it('is one at a time with manualConcurrency 1', async () => {
    const { ae, gate, maxRunning } = await setup(1);
    gate.open();
    for await (const line of ae.runAll()) void line;
    expect(maxRunning()).toBe(1);
  });

  it('finishes the run and frees the lock when the reader stops reading', async () => {
    const { ae, gate } = await setup(4);
    gate.open();
    const it = ae.runAll()[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    // The reader walks away. A background-style repair of one partition still gets its turn.
    const one = await ae.repairPartition(0);
    expect(one.repaired).toBe(2);
    expect(one.stats).toMatchObject({ keysSent: 2, bytesSent: 20, bytesReceived: 14, bucketsCompared: 2 * 16 });
    expect(new Set(gate.started.map((r) => r.partition)).size).toBe(16);
  });
});
