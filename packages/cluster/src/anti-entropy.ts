import { ServiceError, type RepairLine, type RepairOptions } from '@hearsay/service';
import { addRepairStats, emptyRepairStats, type RepairResult, type RepairStats } from '@hearsay/repair';
import type { Store } from '@hearsay/storage';
import { isReachable, type MembershipView } from './membership.ts';
import type { PartitionMap } from './partition-map.ts';
import { stablePlacement, type Placement } from './placement.ts';
import type { PeerClient, PeerFactory } from './peer.ts';
import type { Clock } from '@hearsay/clock';
import { ForeignHandoff } from './foreign-handoff.ts';
import { metricFamily } from './prom-text.ts';
import { purgeCutoffMs } from './tombstone-purge.ts';

export interface RangeRepairRequest {
  readonly partition: number;
  readonly fromBucket: number;
  readonly toBucket: number;
  readonly peerId: string;
  readonly peer: PeerClient;
  readonly signal?: AbortSignal;
}

/**
 * Runs one repair session of a partition with one other replica and resolves
 * with `@hearsay/repair`'s own result (rejects when it could not complete).
 * Its `cutoffMs` feeds the tombstone purge rule. See repair-adapter.ts.
 */
export type RepairRange = (request: RangeRepairRequest) => Promise<RepairResult>;

export interface AntiEntropyConfig {
  /** Pause between two partitions in the background (the rate limit). Default 1000 ms. 0 disables background repair. */
  readonly partitionIntervalMs: number;
  /** Tombstones younger than this are never purged. Default 1 day; must be at least the hint window. */
  readonly tombstoneGraceMs: number;
  /**
   * Partitions an on-demand run (`runAll`, `hearsay repair`) repairs at once
   * (background repair stays one partition at a time). Default 4: overlaps
   * the round trips to peers (docs/benchmarks.md, "hearsay repair across 3
   * nodes").
   */
  readonly manualConcurrency: number;
}

export const DEFAULT_ANTI_ENTROPY_CONFIG: AntiEntropyConfig = {
  partitionIntervalMs: 1000,
  tombstoneGraceMs: 24 * 60 * 60 * 1000,
  manualConcurrency: 4,
};

export interface AntiEntropyDeps {
  readonly store: Store;
  readonly membership: MembershipView;
  readonly peers: PeerFactory;
  readonly clock: Clock;
  readonly partitionMap: () => PartitionMap;
  /** Old and new replica sets: a moving partition's tombstones are not purged, and foreign data goes to both sets. Default: `partitionMap` alone. */
  readonly placement?: () => Placement;
  /** Whether a partition this node does not replicate may be dropped once handed to its replicas (topology.ts). Default: never. */
  readonly mayDrop?: (partition: number) => boolean;
  readonly repairRange: RepairRange;
  readonly config?: Partial<AntiEntropyConfig>;
  readonly onError?: (what: string, error: unknown) => void;
}

export interface PartitionRepairOutcome {
  readonly partition: number;
  readonly replicas: number;
  /** Other replicas the partition was repaired with. */
  readonly repaired: number;
  /** Other replicas that could not be reached or whose session failed. */
  readonly failed: readonly string[];
  /** The sum of the stats of its sessions that completed (`addRepairStats`). */
  readonly stats: Readonly<RepairStats>;
  readonly tombstonesPurged: number;
}

/**
 * Background anti-entropy: each partition this node replicates is repaired
 * with every other replica, one partition at a time, `partitionIntervalMs`
 * apart, round robin. `runAll()` does every partition now (POST /v1/repair).
 * After each partition, tombstones are purged under the rule of
 * `tombstone-purge.ts`.
 */
export class AntiEntropy {
  readonly config: AntiEntropyConfig;
  readonly #deps: AntiEntropyDeps;
  #stopped = true;
  #cancelTimer: (() => void) | undefined;
  #cursor = 0;
  /** One session at a time on this node: background and on-demand runs take turns. */
  #lock: Promise<unknown> = Promise.resolve();
  #manualRunning = false;
  readonly #foreign: ForeignHandoff;
  readonly #abort = new AbortController();
  /** Running totals for `/metrics` (see `metrics()`). */
  readonly #totals = {
    sessionsOk: 0,
    sessionsFailed: 0,
    /** Sum over every completed session. */
    sessions: emptyRepairStats(),
    tombstonesPurged: 0,
    partitionsBackground: 0,
    partitionsManual: 0,
    runsInSync: 0,
    runsNotInSync: 0,
    /** When background repair last finished a pass over every owned partition (ms), 0 = never. */
    lastPassMs: 0,
    /** When the last on-demand run ended (ms), 0 = never. */
    lastRunMs: 0,
  };

  constructor(deps: AntiEntropyDeps) {
    this.#deps = deps;
    this.config = { ...DEFAULT_ANTI_ENTROPY_CONFIG, ...deps.config };
    this.#foreign = new ForeignHandoff(deps.store, deps.membership, deps.peers);
  }

  /** Pushes data held for partitions this node does not replicate to their replicas (foreign-handoff.ts). */
  handOffForeign(signal?: AbortSignal): Promise<{ partitions: number; keysSent: number; failed: number; dropped: number }> {
    const placement = this.#deps.placement?.() ?? stablePlacement(this.#deps.partitionMap());
    const run = this.#lock.then(() => this.#foreign.run(placement, signal, this.#deps.mayDrop));
    this.#lock = run.catch(() => undefined);
    return run;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#abort.abort(new Error('stopped'));
    await this.#lock.catch(() => undefined);
  }

  #schedule(): void {
    if (this.#stopped || this.config.partitionIntervalMs <= 0) return;
    this.#cancelTimer = this.#deps.clock.setTimer(() => {
      void this.#backgroundStep().finally(() => this.#schedule());
    }, this.config.partitionIntervalMs);
  }

  async #backgroundStep(): Promise<void> {
    const owned = this.#deps.partitionMap().partitionsOf(this.#deps.membership.selfId);
    const next = owned.find((p) => p >= this.#cursor);
    if (next === undefined) {
      // Once per pass over the owned partitions: hand foreign data on.
      if (this.#cursor > 0) this.#totals.lastPassMs = this.#deps.clock.now();
      this.#cursor = 0;
      try {
        await this.handOffForeign(this.#abort.signal);
      } catch (e) {
        this.#deps.onError?.('handing off foreign data', e);
      }
      return;
    }
    this.#cursor = next + 1;
    try {
      await this.repairPartition(next, this.#abort.signal);
      this.#totals.partitionsBackground++;
    } catch (e) {
      this.#deps.onError?.(`background repair of partition ${next}`, e);
    }
  }

  /** Repairs one partition with each of its other replicas, then purges what the rule allows. */
  repairPartition(partition: number, signal?: AbortSignal): Promise<PartitionRepairOutcome> {
    const run = this.#lock.then(() => this.#repairPartition(partition, signal));
    this.#lock = run.catch(() => undefined);
    return run;
  }

  async #repairPartition(partition: number, signal?: AbortSignal): Promise<PartitionRepairOutcome> {
    const { store, membership, clock } = this.#deps;
    const map = this.#deps.partitionMap();
    const replicas = map.preferenceList(partition);
    const { fromBucket, toBucket } = map.bucketRange(partition, store.bucketBits);
    const outcome = {
      partition,
      replicas: replicas.length,
      repaired: 0,
      failed: [] as string[],
      stats: emptyRepairStats(),
      tombstonesPurged: 0,
    };
    const roundStartMs = clock.now();
    const others = replicas.filter((id) => id !== membership.selfId);
    const cutoffs: number[] = [];
    const session = async (peerId: string): Promise<{ ok: boolean; received: number }> => {
      signal?.throwIfAborted();
      const member = membership.members().find((m) => m.id === peerId);
      if (member === undefined || !isReachable(member)) return { ok: false, received: 0 };
      const startedAtMs = clock.now();
      try {
        const r = await this.#deps.repairRange({
          partition,
          fromBucket,
          toBucket,
          peerId,
          peer: this.#deps.peers(member),
          ...(signal === undefined ? {} : { signal }),
        });
        addRepairStats(this.#totals.sessions, r.stats);
        addRepairStats(outcome.stats, r.stats);
        if (r.stats.keysRefused > 0) {
          this.#deps.onError?.(`repair of partition ${partition} with ${peerId}`,
            new Error(`${r.stats.keysRefused} records refused: versions more than the maximum clock offset ahead of the clock of the store they were sent to (clock skew); the replicas still differ`));
          return { ok: false, received: r.stats.keysReceived };
        }
        cutoffs.push(Math.min(r.cutoffMs, startedAtMs));
        return { ok: true, received: r.stats.keysReceived };
      } catch (e) {
        if (signal?.aborted) throw e;
        this.#deps.onError?.(`repair of partition ${partition} with ${peerId}`, e);
        return { ok: false, received: 0 };
      }
    };
    // First sweep: this node ends up with the union of every replica's records.
    let lastReceiving = -1;
    for (let i = 0; i < others.length; i++) {
      const r = await session(others[i]!);
      if (r.ok) outcome.repaired++;
      else outcome.failed.push(others[i]!);
      if (r.ok) this.#totals.sessionsOk++;
      else this.#totals.sessionsFailed++;
      if (r.received > 0) lastReceiving = i;
    }
    // Second sweep: replicas met before the last one that sent us something
    // lack what came after them; hand it on, so every replica holds
    // everything any replica held when the round began.
    let complete = outcome.failed.length === 0;
    for (let i = 0; complete && i < lastReceiving; i++) {
      if (!(await session(others[i]!)).ok) complete = false;
    }
    // A partition moving to other replicas is not purged: the new ones are not in this round.
    const moving = this.#deps.placement?.().sets(partition).moving === true;
    const cutoff = complete && !moving
      ? purgeCutoffMs({ roundStartMs, sessionCutoffsMs: cutoffs, nowMs: clock.now(), graceMs: this.config.tombstoneGraceMs })
      : undefined;
    if (cutoff !== undefined) {
      // Every replica purges together: one that kept the tombstones would hand
      // them back to the others in its next session (harmless, but endless).
      const results = await Promise.allSettled([
        store.purgeTombstones({ beforeMs: cutoff, fromBucket, toBucket }),
        ...others.map((id) => {
          const m = membership.members().find((x) => x.id === id);
          return m === undefined ? Promise.resolve(0) : this.#deps.peers(m).purge({ fromBucket, toBucket, beforeMs: cutoff });
        }),
      ]);
      for (const r of results) {
        if (r.status === 'fulfilled') {
          outcome.tombstonesPurged += r.value;
          this.#totals.tombstonesPurged += r.value;
        }
        else this.#deps.onError?.(`purging tombstones of partition ${partition}`, r.reason);
      }
    }
    return outcome;
  }

  /** Repair figures in the Prometheus text format (appended to the node's `/metrics`). */
  metrics(): string {
    const t = this.#totals;
    return [
      ...metricFamily('hearsay_repair_sessions_total', 'counter', 'Repair sessions (one partition with one other replica) by outcome.', [
        ['outcome="ok"', t.sessionsOk],
        ['outcome="failed"', t.sessionsFailed],
      ]),
      ...metricFamily('hearsay_repair_keys_total', 'counter', 'Records repair sent to or received from other replicas.', [
        ['direction="sent"', t.sessions.keysSent],
        ['direction="received"', t.sessions.keysReceived],
      ]),
      ...metricFamily('hearsay_repair_bytes_total', 'counter', 'Bytes of repair messages, both ways.', [
        ['direction="sent"', t.sessions.bytesSent],
        ['direction="received"', t.sessions.bytesReceived],
      ]),
      ...metricFamily('hearsay_repair_partitions_total', 'counter', 'Partitions repaired, by what started it.', [
        ['trigger="background"', t.partitionsBackground],
        ['trigger="manual"', t.partitionsManual],
      ]),
      ...metricFamily('hearsay_repair_tombstones_purged_total', 'counter', 'Tombstones purged after repair covered them.', [['', t.tombstonesPurged]]),
      ...metricFamily('hearsay_repair_runs_total', 'counter', 'On-demand repair runs (hearsay repair), by result.', [
        ['result="in_sync"', t.runsInSync],
        ['result="not_in_sync"', t.runsNotInSync],
      ]),
      ...metricFamily('hearsay_repair_last_pass_timestamp_seconds', 'gauge',
        'When background repair last finished a pass over every partition this node replicates (0: not yet).', [['', t.lastPassMs / 1000]]),
      ...metricFamily('hearsay_repair_last_run_timestamp_seconds', 'gauge', 'When the last on-demand repair run ended (0: never).', [['', t.lastRunMs / 1000]]),
    ].join('\n') + '\n';
  }

  /**
   * Repairs these partitions, up to `manualConcurrency` at once (different
   * partitions are different bucket ranges: independent sessions), under the
   * lock so background repair waits, and yields each outcome as it completes.
   * The work runs on its own: a consumer that stops reading does not leave
   * the lock held (the run finishes, or stops at `signal`). If a partition
   * fails, no more are started, the running ones finish, and the error is
   * thrown after the outcomes before it.
   */
  #repairMany(partitions: readonly number[], signal?: AbortSignal): AsyncIterable<{ partition: number; outcome: PartitionRepairOutcome }> {
    type Done = { partition: number; outcome: PartitionRepairOutcome };
    const ready: Done[] = [];
    let failure: { error: unknown } | undefined;
    let finished = false;
    let wake: (() => void) | null = null;
    const notify = (): void => {
      const w = wake;
      wake = null;
      w?.();
    };
    const work = this.#lock.then(async () => {
      const queue = [...partitions];
      const running = new Set<Promise<void>>();
      const launch = (): void => {
        while (failure === undefined && running.size < Math.max(1, this.config.manualConcurrency) && queue.length > 0) {
          const partition = queue.shift() as number;
          const run: Promise<void> = this.#repairPartition(partition, signal).then(
            (outcome) => { ready.push({ partition, outcome }); },
            (error: unknown) => { failure ??= { error }; },
          ).finally(() => {
            running.delete(run);
            notify();
          });
          running.add(run);
        }
      };
      launch();
      while (running.size > 0) {
        await Promise.race(running);
        launch();
      }
    }).finally(() => {
      finished = true;
      notify();
    });
    this.#lock = work.catch(() => undefined);
    return (async function* () {
      for (;;) {
        const next = ready.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (finished) {
          if (failure !== undefined) throw failure.error;
          return;
        }
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    })();
  }

  /**
   * Repairs every partition this node replicates now, yielding a progress
   * line per partition and a summary last. One on-demand run at a time
   * (CONFLICT otherwise).
   */
  runAll(options: RepairOptions = {}): AsyncIterable<RepairLine> {
    return this.#runAll(options);
  }

  async *#runAll(options: RepairOptions): AsyncIterable<RepairLine> {
    if (this.#manualRunning) throw new ServiceError('CONFLICT', 'a repair is already running on this node');
    this.#manualRunning = true;
    const startedAtMs = this.#deps.clock.now();
    try {
      // First what this node holds for partitions it does not replicate.
      const foreign = await this.handOffForeign(options.signal);
      const map = this.#deps.partitionMap();
      const owned = map.partitionsOf(this.#deps.membership.selfId);
      const sessions = emptyRepairStats();
      let compared = 0;
      let purged = 0;
      const unreachable = new Set<string>();
      let done = 0;
      for await (const { partition: p, outcome: o } of this.#repairMany(owned, options.signal)) {
        done++;
        compared += o.repaired;
        addRepairStats(sessions, o.stats);
        purged += o.tombstonesPurged;
        for (const f of o.failed) unreachable.add(f);
        yield {
          type: 'progress',
          done,
          total: owned.length,
          partition: p,
          keysSent: o.stats.keysSent,
          keysReceived: o.stats.keysReceived,
          failed: o.failed.length,
        } satisfies RepairLine;
      }
      const inSync = unreachable.size === 0 && foreign.failed === 0;
      this.#totals.partitionsManual += done;
      if (inSync) this.#totals.runsInSync++;
      else this.#totals.runsNotInSync++;
      this.#totals.lastRunMs = this.#deps.clock.now();
      const list = [...unreachable].sort();
      yield {
        type: 'summary',
        inSync,
        rangesCompared: compared,
        partitions: owned.length,
        // Foreign hand-off sends records too; its bytes travel as internode writes, not repair messages.
        keysSent: sessions.keysSent + foreign.keysSent,
        keysReceived: sessions.keysReceived,
        bytesSent: sessions.bytesSent,
        bytesReceived: sessions.bytesReceived,
        tombstonesPurged: purged,
        foreignPartitions: foreign.partitions,
        foreignKeysSent: foreign.keysSent,
        durationMs: this.#deps.clock.now() - startedAtMs,
        message:
          owned.length === 0
            ? 'this node replicates no partition'
            : inSync
              ? `${owned.length} partitions in sync with every replica`
              : list.length > 0
                ? `could not repair with ${list.join(', ')}`
                : `could not hand ${foreign.failed} foreign partitions to their replicas`,
      } satisfies RepairLine;
    } finally {
      this.#manualRunning = false;
    }
  }
}
