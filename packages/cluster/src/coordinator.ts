import {
  handedOverPutOptions,
  insufficientReplicas,
  ServiceError,
  type ClusterView,
  type Consistency,
  type DeleteOptions,
  type GetOptions,
  type HealthReport,
  type KvService,
  type ListItem,
  type ListOptions,
  type ListPage,
  type PutOptions,
  type RepairLine,
  type RepairOptions,
} from '@hearsay/http';
import { compareRecords, compareVersions, decodeCursor, encodeCursor, hashKey, isLive, isStorageError, newer, newest } from '@hearsay/storage';
import type { Store, StoredRecord, Version } from '@hearsay/storage';
import type { ClockFence, ClockVerdict } from './clock-fence.ts';
import { replicaOutcome } from './internode-handler.ts';
import type { HintStore } from './hint-store.ts';
import { isReachable, ringMembers, type MemberInfo, type MembershipView } from './membership.ts';
import { computePartitionMap, type PartitionMap } from './partition-map.ts';
import type { PeerClient, PeerFactory, ReplicaOutcome, ScanRequest, ScanResponse } from './peer.ts';
import { awaitAnswers, requiredReplicas, settleWithin } from './quorum.ts';
import { metricFamily } from './prom-text.ts';
import { scanLocal } from './scan.ts';
import type { StoreWriteHealth } from './store-health.ts';
import type { Timers } from './timers.ts';
import { awaitWriteAcks } from './write-acks.ts';

export interface CoordinatorConfig {
  /** Replicas per partition (capped at the member count). Default 3. */
  readonly replicationFactor: number;
  /** 2^partitionBits partitions. Default 8 (256). */
  readonly partitionBits: number;
  /** How long a request waits for replicas before answering 503. Default 2000 ms. */
  readonly requestTimeoutMs: number;
  /**
   * Whether a stand-in that took a hint for a down replica counts toward the
   * consistency level (Dynamo's sloppy quorum). Default false: only replicas
   * in the preference list count, so a quorum read always overlaps a quorum
   * write; stand-ins add durability, not availability.
   */
  readonly hintsCountTowardConsistency: boolean;
  /** Repair stale replicas seen by a read, in the background. Default true. */
  readonly readRepair: boolean;
  /**
   * A key whose only replica is this node (a one-node cluster, or RF 1) is
   * read and written on the local store directly, skipping the quorum
   * bookkeeping that one replica does not need. The answers, errors and
   * counters are those of the general path. Default true; false is for
   * tests that compare the two.
   */
  readonly singleReplicaFastPath: boolean;
}

export const DEFAULT_COORDINATOR_CONFIG: CoordinatorConfig = {
  replicationFactor: 3,
  partitionBits: 8,
  requestTimeoutMs: 2000,
  hintsCountTowardConsistency: false,
  readRepair: true,
  singleReplicaFastPath: true,
};

export interface CoordinatorDeps {
  readonly store: Store;
  readonly membership: MembershipView;
  readonly peers: PeerFactory;
  readonly hints: HintStore;
  readonly timers: Timers;
  readonly config?: Partial<CoordinatorConfig>;
  /** Runs `POST /v1/repair`; the cluster node wires the anti-entropy scheduler here. */
  readonly repair?: (options: RepairOptions) => AsyncIterable<RepairLine>;
  /** Told about background failures (replication to a replica that failed, a hint that could not be kept). */
  readonly onError?: (what: string, error: unknown) => void;
  /** Told whether this node's own writes succeed; health is not ok while it says the store cannot write. */
  readonly storeHealth?: StoreWriteHealth;
  /** More Prometheus text for `metrics()` (the internode routes' and peer queues' figures). */
  readonly extraMetrics?: () => string;
  /**
   * Judges this node's clock against the members it reaches (clock-fence.ts):
   * writes are coordinated only while it says `ok`. None: never fenced
   * (tests of other things).
   */
  readonly clock?: ClockFence;
}

/** Times a write is stamped again past a version a replica holds, before it gives up (CONFLICT). */
export const MAX_RESTAMPS = 4;

export interface CoordinatorCounters {
  writes: number;
  reads: number;
  writeFailures: number;
  readFailures: number;
  readRepairs: number;
  hintsHandedToStandIns: number;
  hintsKeptLocally: number;
  preconditionFailures: number;
  /** Writes refused with BUSY because too few of their replicas had room in their queues. */
  writesShed: number;
  /** Writes stamped again because a replica held a higher version than the one they were stamped with. */
  writesRestamped: number;
  /** Records a replica refused because their version was more than its maximum clock offset ahead of its clock. */
  replicaClockRefusals: number;
}

/**
 * The coordinator: any node takes any request and runs it against the RF
 * replicas of the key's partition. Implements the HTTP app's `KvService`.
 *
 * - Writes: the version is stamped by THIS node's store clock; the same record
 *   is sent to every replica of the preference list in parallel (applied
 *   locally when this node is one) and acknowledged after W confirmed.
 *   A replica that membership reports down gets a hint (see `#replicate`).
 * - Reads: sent to every reachable replica; answered after R answered, with
 *   the record that wins by last-write-wins (storage's `newest`: the same
 *   rule every store merges by); stale answers (also late ones) are read-repaired.
 * - Conditional writes: checked against a quorum read (at least), then
 *   written. Not a linearizable compare-and-set: two racing conditional
 *   writes can both pass; LWW then keeps the higher version.
 * - A key whose only replica is this node (one ring member, or RF 1) skips
 *   the quorum machinery (`singleReplicaFastPath`): one replica answers every
 *   consistency level and has nobody to repair or hint, so the local store's
 *   answer is the answer, under the same deadline and with the same errors.
 */
export class Coordinator implements KvService {
  readonly config: CoordinatorConfig;
  readonly counters: CoordinatorCounters = {
    writes: 0,
    reads: 0,
    writeFailures: 0,
    readFailures: 0,
    readRepairs: 0,
    hintsHandedToStandIns: 0,
    hintsKeptLocally: 0,
    preconditionFailures: 0,
    writesShed: 0,
    writesRestamped: 0,
    replicaClockRefusals: 0,
  };
  readonly #store: Store;
  readonly #membership: MembershipView;
  readonly #peers: PeerFactory;
  readonly #hints: HintStore;
  readonly #timers: Timers;
  readonly #repair: ((options: RepairOptions) => AsyncIterable<RepairLine>) | undefined;
  readonly #onError: (what: string, error: unknown) => void;
  readonly #storeHealth: StoreWriteHealth | undefined;
  readonly #extraMetrics: (() => string) | undefined;
  readonly #clock: ClockFence | undefined;
  #map: PartitionMap;
  /**
   * This node is the only ring member, so the only replica of every
   * partition (a one-node cluster, e.g. `hearsay start` without seeds).
   * Reads and writes then take the single-replica path without hashing the
   * key for its partition.
   */
  #solo: boolean;
  #ringKey: string;
  #index: Map<string, MemberInfo>;
  #stopped = false;
  readonly #unsubscribe: () => void;
  /** Background work (read repair, failure hints) so `stop()` can wait for it. */
  readonly #background = new Set<Promise<unknown>>();

  constructor(deps: CoordinatorDeps) {
    this.config = { ...DEFAULT_COORDINATOR_CONFIG, ...deps.config };
    this.#store = deps.store;
    this.#membership = deps.membership;
    this.#peers = deps.peers;
    this.#hints = deps.hints;
    this.#timers = deps.timers;
    this.#repair = deps.repair;
    this.#onError = deps.onError ?? (() => undefined);
    this.#storeHealth = deps.storeHealth;
    this.#extraMetrics = deps.extraMetrics;
    this.#clock = deps.clock;
    this.#ringKey = '';
    this.#map = this.#computeMap();
    this.#solo = this.#isSolo();
    this.#index = this.#indexMembers();
    this.#unsubscribe = this.#membership.onChange(() => {
      this.#index = this.#indexMembers();
      this.#map = this.#computeMap();
      this.#solo = this.#isSolo();
    });
  }

  /** The current partition map (recomputed when the set of ring members changes). */
  get partitionMap(): PartitionMap {
    return this.#map;
  }

  partitionOf(key: string): number {
    return this.#map.partitionOfHash(hashKey(key));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe();
    await Promise.allSettled([...this.#background]);
  }

  // KvService ------------------------------------------------------------------

  async get(key: string, options: GetOptions): Promise<StoredRecord | undefined> {
    this.#checkServing();
    this.counters.reads++;
    const best = await this.#read(key, options.consistency);
    return this.#isLive(best) ? best : undefined;
  }

  /**
   * `get` without waiting, for the app's synchronous GET: on the
   * single-replica path, when the store can read the key at once
   * (`Store.getRecordNow`). `null` otherwise: the app then calls `get`. The
   * same answer, counters and errors as `get`.
   */
  getNow(key: string, _options: GetOptions): StoredRecord | undefined | null {
    if (!this.#solo && !this.#selfOnly(this.#map.preferenceList(this.partitionOf(key)))) return null;
    this.#checkServing();
    let record: StoredRecord | undefined | null;
    try {
      record = this.#store.getRecordNow(key);
    } catch {
      this.counters.reads++;
      this.counters.readFailures++;
      throw insufficientReplicas(0, 1, 1);
    }
    if (record === null) return null;
    this.counters.reads++;
    // Not observed: the store's clock is above every version it holds (it observes each one it applies).
    return this.#isLive(record) ? record : undefined;
  }

  async put(key: string, value: Uint8Array, options: PutOptions): Promise<StoredRecord> {
    this.#checkServing();
    this.#checkClock();
    // Awaited only when there is something to check: a PUT without preconditions takes no extra promise turn.
    if (options.ifMatch !== undefined || options.ifNoneMatch !== undefined) {
      await this.#checkPreconditions(key, options.consistency, options.ifMatch, options.ifNoneMatch);
    }
    const contentType = options.contentType;
    const replicas = this.#replicasOf(key);
    // The value is handed over (KvService.put): the general path keeps it as is too.
    if (replicas === null) return this.#writeSelf(this.#store.put(key, value, handedOverPutOptions(contentType)));
    const record: StoredRecord = {
      key,
      value,
      version: this.#stamp(),
      tombstone: false,
      ...(contentType === undefined ? {} : { contentType }),
    };
    return this.#write(record, replicas, options.consistency, preconditionOf(options.ifMatch, options.ifNoneMatch));
  }

  async delete(key: string, options: DeleteOptions): Promise<StoredRecord> {
    this.#checkServing();
    this.#checkClock();
    if (options.ifMatch !== undefined) await this.#checkPreconditions(key, options.consistency, options.ifMatch, undefined);
    const replicas = this.#replicasOf(key);
    if (replicas === null) return this.#writeSelf(this.#store.delete(key));
    const record: StoredRecord = { key, value: new Uint8Array(0), version: this.#stamp(), tombstone: true };
    return this.#write(record, replicas, options.consistency, preconditionOf(options.ifMatch, undefined));
  }

  /**
   * A listing merged from every reachable member's scan (tombstones included,
   * per key the record that wins by last-write-wins). Answered only when
   * every partition had at least R of its replicas among the members that answered.
   */
  async list(options: ListOptions): Promise<ListPage> {
    this.#checkServing();
    const after = options.cursor === undefined ? undefined : cursorKey(options.cursor);
    const map = this.#map;
    const targets = this.#reachableMembers().map((m) => m.id);
    const request: ScanRequest = { prefix: options.prefix, limit: options.limit, ...(after === undefined ? {} : { after }) };
    const outcome = await settleWithin(
      targets.map((id) => this.#scanOn(id, request)),
      this.#timers,
      this.config.requestTimeoutMs,
    );
    const answered = new Set(outcome.answers.map((a) => targets[a.index]!));
    const need = requiredReplicas(options.consistency, map.replicationFactor);
    for (let p = 0; p < map.partitionCount; p++) {
      const have = map.preferenceList(p).filter((m) => answered.has(m)).length;
      if (have < need) throw insufficientReplicas(have, need, map.replicationFactor);
    }
    // Keys past the first truncated page may be missing from that member: stop there.
    let boundary: string | undefined;
    const best = new Map<string, StoredRecord>();
    for (const { value } of outcome.answers) {
      for (const r of value.records) {
        best.set(r.key, newer(best.get(r.key), r));
      }
      const last = value.records.at(-1);
      if (value.more && last !== undefined && (boundary === undefined || utf8Less(last.key, boundary))) boundary = last.key;
    }
    const keys = [...best.keys()].filter((k) => boundary === undefined || !utf8Less(boundary, k)).sort(utf8Compare);
    const items: ListItem[] = [];
    let stoppedAt = -1;
    for (let i = 0; i < keys.length; i++) {
      const r = best.get(keys[i]!)!;
      if (!this.#isLive(r)) continue;
      items.push({ key: r.key, version: r.version, size: r.value.byteLength });
      if (items.length === options.limit) {
        stoppedAt = i;
        break;
      }
    }
    let next: string | null;
    if (stoppedAt >= 0) {
      next = stoppedAt < keys.length - 1 || boundary !== undefined ? encodeCursor(items.at(-1)!.key) : null;
    } else {
      next = boundary === undefined ? null : encodeCursor(boundary);
    }
    return { items, next };
  }

  async cluster(): Promise<ClusterView> {
    const map = this.#map;
    const selfId = this.#membership.selfId;
    const clocks = this.#clock?.memberClocks();
    const verdict = this.#clock?.verdict();
    return {
      self: selfId,
      members: this.#membership
        .members()
        .map((m) => {
          const offset = clocks?.get(m.id);
          return {
            id: m.id,
            state: m.state,
            http: m.http,
            gossip: m.gossip,
            incarnation: m.incarnation,
            ...(m.keys === undefined ? {} : { keys: m.keys }),
            ...(m.status === undefined ? {} : { status: m.status }),
            partitions: [...map.partitionsOf(m.id)],
            // Its clock as measured from here (positive: ahead of ours); this node's own verdict on itself.
            ...(offset === undefined ? {} : { clockOffsetMs: Math.round(offset.offsetMs), clockErrorMs: Math.ceil(offset.errorMs) }),
            ...(m.id === selfId && verdict !== undefined ? { clock: clockView(verdict) } : {}),
          };
        })
        .sort((a, b) => utf8Compare(a.id, b.id)),
    };
  }

  async health(): Promise<HealthReport> {
    if (this.#stopped) return { ok: false, reason: 'stopping' };
    if (this.#membership.ready?.() === false) return { ok: false, reason: 'joining: no other member seen yet' };
    const storeProblem = this.#storeHealth?.problem();
    if (storeProblem !== undefined) return { ok: false, reason: storeProblem };
    const verdict = this.#clock?.verdict();
    const clock = verdict === undefined ? {} : { clock: clockView(verdict) };
    // A node that refuses writes for its clock is not serving: clients and load balancers should use another.
    if (verdict !== undefined && verdict.state !== 'ok') {
      // Flat figures too: a 503 health answer carries only plain fields beside its message.
      return {
        ok: false,
        reason: verdict.reason ?? verdict.state,
        clockState: verdict.state,
        maxClockOffsetMs: verdict.maxOffsetMs,
        ...(verdict.offsetMs === undefined ? {} : { clockOffsetMs: verdict.offsetMs }),
        ...(verdict.stampsResumeAtMs === undefined ? {} : { stampsResumeAtMs: verdict.stampsResumeAtMs }),
        ...clock,
      };
    }
    const members = this.#membership.members();
    return {
      ok: true,
      members: members.length,
      reachable: members.filter((m) => m.id === this.#membership.selfId || isReachable(m)).length,
      replicationFactor: this.#map.replicationFactor,
      hints: this.#hints.count(),
      ...clock,
    };
  }

  repair(options: RepairOptions): AsyncIterable<RepairLine> {
    if (this.#repair === undefined) {
      return (async function* () {
        yield {
          type: 'summary',
          inSync: true,
          rangesCompared: 0,
          keysSent: 0,
          keysReceived: 0,
          bytesSent: 0,
          bytesReceived: 0,
          durationMs: 0,
          message: 'repair is not configured on this node',
        } satisfies RepairLine;
      })();
    }
    return this.#repair(options);
  }

  metrics(): string {
    const c = this.counters;
    const h = this.#hints.stats();
    const byState = new Map<string, number>();
    for (const m of this.#membership.members()) byState.set(m.state, (byState.get(m.state) ?? 0) + 1);
    return [
      ...metricFamily('hearsay_cluster_requests_total', 'counter', 'Coordinator requests by kind and outcome.', [
        ['kind="write",outcome="ok"', c.writes - c.writeFailures],
        ['kind="write",outcome="failed"', c.writeFailures],
        ['kind="read",outcome="ok"', c.reads - c.readFailures],
        ['kind="read",outcome="failed"', c.readFailures],
      ]),
      ...metricFamily('hearsay_cluster_read_repairs_total', 'counter', 'Stale replicas written back by reads.', [['', c.readRepairs]]),
      ...metricFamily(
        'hearsay_cluster_writes_shed_total',
        'counter',
        'Client writes refused with 503 BUSY because too few of their replicas had room in their queues.',
        [['', c.writesShed]],
      ),
      ...metricFamily('hearsay_cluster_store_write_failures_total', 'counter', 'Writes to this node\'s store or hints that failed (I/O errors, a full disk).', [
        ['', this.#storeHealth?.failures ?? 0],
      ]),
      ...this.#clockMetrics(),
      ...metricFamily('hearsay_cluster_hints', 'gauge', 'Hints kept on this node for other members.', [['', h.hints]]),
      ...metricFamily('hearsay_cluster_hints_total', 'counter', 'Hints by what happened to them.', [
        ['event="stored"', h.stored],
        ['event="refused"', h.refused],
        ['event="refused_clock"', h.refusedClock],
        ['event="delivered"', h.delivered],
        ['event="expired"', h.expired],
        ['event="handed_to_stand_in"', c.hintsHandedToStandIns],
      ]),
      ...metricFamily('hearsay_cluster_members', 'gauge', 'Members known, by state.',
        ['alive', 'suspect', 'dead', 'left'].map((state) => [`state="${state}"`, byState.get(state) ?? 0] as const)),
    ].join('\n') + '\n' + (this.#extraMetrics?.() ?? '');
  }

  // Internals ------------------------------------------------------------------

  #computeMap(): PartitionMap {
    const ids = ringMembers(this.#membership.members());
    if (!ids.includes(this.#membership.selfId)) ids.push(this.#membership.selfId);
    const key = [...ids].sort().join('\u0000');
    if (key === this.#ringKey && this.#map !== undefined) return this.#map;
    this.#ringKey = key;
    return computePartitionMap(ids, {
      partitionBits: this.config.partitionBits,
      replicationFactor: this.config.replicationFactor,
    });
  }

  #checkServing(): void {
    if (this.#stopped) throw new ServiceError('UNAVAILABLE', 'the node is shutting down');
    if (this.#membership.ready?.() === false) throw new ServiceError('UNAVAILABLE', 'the node has not found the cluster yet (no seed answered)');
  }

  #indexMembers(): Map<string, MemberInfo> {
    return new Map(this.#membership.members().map((m) => [m.id, m]));
  }

  #member(id: string): MemberInfo | undefined {
    return this.#index.get(id);
  }

  #reachable(id: string): boolean {
    return id === this.#membership.selfId || isReachable(this.#member(id));
  }

  #reachableMembers(): MemberInfo[] {
    const selfId = this.#membership.selfId;
    const out = this.#membership.members().filter((m) => m.id !== selfId && isReachable(m));
    out.push({ id: selfId, state: 'alive', http: '', gossip: '', incarnation: 0 });
    return out;
  }

  #peer(id: string): PeerClient {
    const m = this.#member(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return this.#peers(m);
  }

  #isLive(r: StoredRecord | undefined): r is StoredRecord {
    return isLive(r, this.#timers.nowMs());
  }

  async #checkPreconditions(
    key: string,
    consistency: Consistency,
    ifMatch: Version | '*' | undefined,
    ifNoneMatch: '*' | undefined,
  ): Promise<void> {
    if (ifMatch === undefined && ifNoneMatch === undefined) return;
    const current = await this.#read(key, consistency === 'all' ? 'all' : 'quorum');
    const live = this.#isLive(current) ? current : undefined;
    let ok = true;
    if (ifNoneMatch === '*' && live !== undefined) ok = false;
    if (ifMatch === '*' && live === undefined) ok = false;
    if (ifMatch !== undefined && ifMatch !== '*' && (live === undefined || compareVersions(live.version, ifMatch) !== 0)) ok = false;
    if (!ok) {
      this.counters.preconditionFailures++;
      throw new ServiceError('PRECONDITION_FAILED', 'the precondition did not hold on a quorum of replicas');
    }
  }

  /** The map has this node alone (it always includes this node). */
  #isSolo(): boolean {
    return this.config.singleReplicaFastPath && this.#map.members.length === 1;
  }

  /** Whether a preference list is this node alone: then requests take the single-replica path. */
  #selfOnly(prefs: readonly string[]): boolean {
    return this.config.singleReplicaFastPath && prefs.length === 1 && prefs[0] === this.#membership.selfId;
  }

  /** Reads the last-write-wins winner among R replicas; read-repairs stale ones in the background. */
  #read(key: string, consistency: Consistency): Promise<StoredRecord | undefined> {
    if (this.#solo) return this.#readSelf(key);
    const prefs = this.#map.preferenceList(this.partitionOf(key));
    if (this.#selfOnly(prefs)) return this.#readSelf(key);
    return this.#readReplicas(key, prefs, consistency);
  }

  /**
   * `#read` when this node is the key's only replica: R is 1 at every
   * consistency level and there is nobody to read-repair, so the answer is
   * the local record — with the same deadline, counters and errors as
   * `#readReplicas` gives for a preference list of one.
   */
  async #readSelf(key: string): Promise<StoredRecord | undefined> {
    let record: StoredRecord | undefined;
    try {
      record = await this.#withinDeadline(this.#store.getRecord(key));
    } catch (e) {
      this.counters.readFailures++;
      if (e === DEADLINE_PASSED) {
        throw new ServiceError('TIMEOUT', '1 of 1 replicas required, 0 answered in time', { acknowledged: 0, required: 1 });
      }
      throw insufficientReplicas(0, 1, 1);
    }
    // Not observed: the store's clock is above every version it holds (it observes each one it applies).
    return record;
  }

  /**
   * `work`, or a rejection with `DEADLINE_PASSED` once `requestTimeoutMs`
   * of `timers` time passed first: the deadline `awaitAnswers` sets.
   */
  #withinDeadline<T>(work: Promise<T>): Promise<T> {
    const timers = this.#timers;
    return new Promise<T>((resolve, reject) => {
      const timer = timers.setTimeout(() => reject(DEADLINE_PASSED), this.config.requestTimeoutMs);
      work.then(
        (value) => {
          timers.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          timers.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  async #readReplicas(key: string, prefs: readonly string[], consistency: Consistency): Promise<StoredRecord | undefined> {
    const need = requiredReplicas(consistency, prefs.length);
    const targets = prefs.filter((id) => this.#reachable(id));
    const attempts = targets.map((id) => this.#readOn(id, key));
    const outcome = await awaitAnswers(attempts, need, this.#timers, this.config.requestTimeoutMs);
    if (outcome.answers.length < need) {
      this.counters.readFailures++;
      if (outcome.timedOut) {
        throw new ServiceError('TIMEOUT', `${need} of ${prefs.length} replicas required, ${outcome.answers.length} answered in time`, {
          acknowledged: outcome.answers.length,
          required: need,
        });
      }
      throw insufficientReplicas(outcome.answers.length, need, prefs.length);
    }
    const best = newest(outcome.answers.map((a) => a.value));
    // A version too far ahead is refused by the store (VERSION_AHEAD, counted there): the clock stays, the read answers it.
    if (best !== undefined) this.#observe(best.version);
    if (this.config.readRepair) this.#track(this.#readRepair(targets, attempts, best));
    return best;
  }

  async #readRepair(
    targets: readonly string[],
    attempts: readonly Promise<StoredRecord | undefined>[],
    seen: StoredRecord | undefined,
  ): Promise<void> {
    const all = await settleWithin(attempts, this.#timers, this.config.requestTimeoutMs);
    const best = newest([seen, ...all.answers.map((a) => a.value)]);
    if (best === undefined) return;
    const stale = all.answers.filter((a) => a.value === undefined || compareRecords(a.value, best) < 0);
    await Promise.allSettled(
      stale.map(async (a) => {
        this.counters.readRepairs++;
        // A replica refusing the record (too far ahead of its clock) is counted by #writeOn.
        await this.#writeOn(targets[a.index]!, [best]);
      }),
    );
  }

  /** A write to the replicas of a key that has others besides this node (`#replicasOf`); resolves with the record acknowledged. */
  #write(record: StoredRecord, replicas: Replicas, consistency: Consistency, precondition: Precondition): Promise<StoredRecord> {
    this.counters.writes++;
    return this.#writeReplicas(record, replicas.partition, replicas.prefs, consistency, precondition);
  }

  /**
   * Refuses a write while this node's clock is not known to be within the
   * maximum offset of the members it reaches (clock-fence.ts): before it is
   * stamped, so a node outside the offset stamps nothing.
   */
  #checkClock(): void {
    const verdict = this.#clock?.verdict();
    if (verdict === undefined || verdict.state === 'ok') return;
    this.#clock!.countRefusal(verdict.state);
    this.counters.writes++;
    this.counters.writeFailures++;
    throw clockRefusal(verdict);
  }

  /** A fresh version from the store's clock; CLOCK_SKEW while the store stamps nothing (its clock runs too far ahead). */
  #stamp(): Version {
    try {
      return this.#store.now();
    } catch (e) {
      if (isStorageError(e, 'CLOCK_AHEAD')) throw storeClockRefusal(e);
      throw e;
    }
  }

  /** Moves the store's clock up to a version seen elsewhere; one too far ahead is refused (and counted) by the store. */
  #observe(version: Version): boolean {
    try {
      this.#store.observe(version);
      return true;
    } catch (e) {
      if (isStorageError(e, 'VERSION_AHEAD')) return false;
      throw e;
    }
  }

  /** The key's partition and preference list; null when this node is its only replica (writes then take `#writeSelf`). */
  #replicasOf(key: string): Replicas | null {
    if (this.#solo) return null;
    const partition = this.partitionOf(key);
    const prefs = this.#map.preferenceList(partition);
    return this.#selfOnly(prefs) ? null : { partition, prefs };
  }

  /**
   * Sends the record to the key's replicas and waits for `need` of them.
   * A replica that already holds a higher version keeps it and says so
   * (write-acks.ts): the write lost there, within the clock offset. Then the
   * clock is moved past that version and the record stamped again — so the
   * client's write wins, as it should: it came later — unless a precondition
   * says the write no longer applies (412), the version is too far ahead to
   * stamp past (503 CLOCK_SKEW), or concurrent writes keep winning (409
   * CONFLICT after MAX_RESTAMPS). Never an acknowledgement for a write that
   * changed nothing. The whole exchange stays within the request timeout.
   */
  async #writeReplicas(
    record: StoredRecord,
    partition: number,
    prefs: readonly string[],
    consistency: Consistency,
    precondition: Precondition,
  ): Promise<StoredRecord> {
    const need = requiredReplicas(consistency, prefs.length);
    this.#admit(prefs, need);
    const deadlineMs = this.#timers.nowMs() + this.config.requestTimeoutMs;
    let current = record;
    for (let restamps = 0; ; restamps++) {
      const attempts = this.#replicate([current], partition).map((p) => p.then((outcomes) => outcomes[0] ?? null));
      const wait = await awaitWriteAcks(attempts, need, this.#timers, Math.max(0, deadlineMs - this.#timers.nowMs()));
      if (wait.kind === 'acked') return current;
      if (wait.kind === 'short') {
        this.counters.writeFailures++;
        const refused = wait.refused === 0 ? '' : `; ${wait.refused} refused its version as ${wait.refusedAheadMs} ms ahead of their clocks (clock skew)`;
        if (wait.timedOut) {
          throw new ServiceError('TIMEOUT', `${need} of ${prefs.length} replicas required, ${wait.acked} acknowledged in time${refused}`, {
            acknowledged: wait.acked,
            required: need,
          });
        }
        if (refused !== '') {
          throw new ServiceError('INSUFFICIENT_REPLICAS', `${need} of ${prefs.length} replicas required, ${wait.acked} acknowledged${refused}`, {
            acknowledged: wait.acked,
            required: need,
          });
        }
        throw insufficientReplicas(wait.acked, need, prefs.length);
      }
      // Lost: a replica holds a higher version.
      if (!allowsOver(precondition, wait.tombstone, wait.held)) {
        this.counters.writeFailures++;
        this.counters.preconditionFailures++;
        throw new ServiceError('PRECONDITION_FAILED', 'a replica holds a newer version of the key than the one the precondition was checked against');
      }
      if (restamps >= MAX_RESTAMPS) {
        this.counters.writeFailures++;
        throw new ServiceError('CONFLICT', `concurrent writes to this key kept superseding this one (${MAX_RESTAMPS + 1} attempts); retry`);
      }
      if (!this.#observe(wait.held)) {
        this.counters.writeFailures++;
        const aheadMs = wait.held.ms - this.#store.clockStatus().wallMs;
        throw new ServiceError(
          'CLOCK_SKEW',
          `a replica holds a version of this key ${aheadMs} ms ahead of this node's clock, more than the maximum offset of ` +
            `${this.#store.clockStatus().maxOffsetMs} ms: a write now would not win over it (the clock that stamped it was wrong)`,
          { offsetMs: aheadMs, maxOffsetMs: this.#store.clockStatus().maxOffsetMs },
        );
      }
      let version: Version;
      try {
        version = this.#stamp();
      } catch (e) {
        this.counters.writeFailures++;
        throw e;
      }
      this.counters.writesRestamped++;
      current = { ...current, version };
    }
  }

  /**
   * Backpressure: a write goes out only if at least `need` of its replicas
   * can take it now (this node always can; a peer can while the bytes queued
   * for it are under its cap). Otherwise it is refused before anything is
   * written, with 503 BUSY, rather than queued past what the peers can take
   * in or turned into a timeout. Replicas beyond `need` without room get
   * the write as a hint, as for any replica the write fails on.
   */
  #admit(prefs: readonly string[], need: number): void {
    let room = 0;
    for (const id of prefs) {
      if (id === this.#membership.selfId) room++;
      else if (this.#reachable(id) && this.#peer(id).hasRoom?.() !== false) room++;
      if (room >= need) return;
    }
    const reachable = prefs.filter((id) => this.#reachable(id)).length;
    // Replicas down are INSUFFICIENT_REPLICAS (the write goes on to give them hints); only busy ones shed.
    if (reachable < need) return;
    this.counters.writeFailures++;
    this.counters.writesShed++;
    throw new ServiceError('BUSY', `the replicas of this key have too much queued (${room} of ${need} required can take a write now); retry later`, {
      acknowledged: 0,
      required: need,
    });
  }

  /**
   * A write when this node is the key's only replica: W is 1 at every
   * consistency level and no stand-in or hint is involved (this node is always
   * reachable), so it is the local store's own `put` or `delete`, whose
   * version comes from the same clock the general path stamps with. The
   * store's local path is its fastest: no validation of a record built here,
   * no last-write-wins contest with the record it replaces (a fresh version
   * is above every version the store holds; one above the clock, from a
   * remote clock far ahead, is stamped past rather than lost to). Same
   * deadline, counters and errors as the general path gives for a
   * preference list of one; a closed store fails uncounted, as the general
   * path's clock does before it counts a write.
   */
  async #writeSelf(work: Promise<StoredRecord>): Promise<StoredRecord> {
    try {
      const record = await this.#withinDeadline(work);
      this.#storeHealth?.noteSuccess();
      this.counters.writes++;
      return record;
    } catch (e) {
      if (isStorageError(e, 'STORE_CLOSED')) throw e;
      this.counters.writes++;
      this.counters.writeFailures++;
      // Refused by the clock bound: nothing wrong with the store.
      if (isStorageError(e, 'CLOCK_AHEAD')) throw storeClockRefusal(e);
      if (isStorageError(e, 'VERSION_AHEAD')) throw versionRefusal(e);
      if (e !== DEADLINE_PASSED) this.#storeHealth?.noteFailure(e);
      if (e === DEADLINE_PASSED) {
        throw new ServiceError('TIMEOUT', '1 of 1 replicas required, 0 acknowledged in time', { acknowledged: 0, required: 1 });
      }
      throw insufficientReplicas(0, 1, 1);
    }
  }

  /**
   * Sends records of one partition to its replicas; one promise per
   * preference-list replica that resolves when that replica (or, with
   * `hintsCountTowardConsistency`, its stand-in) holds them durably.
   *
   * - This node: applied to the local store.
   * - A reachable replica: written over the internode API; if that fails, a
   *   hint is kept on this node (not counted: the caller already failed it).
   *   Records the replica refused as too far ahead of its clock are kept as
   *   hints too: it takes them once its clock has caught up.
   * - A replica membership reports down: the records go as a hint to the
   *   first reachable member beyond the preference list in the partition's
   *   HRW ranking (the stand-in), which delivers them when the replica is
   *   back; with no stand-in this node keeps the hint.
   */
  #replicate(records: readonly StoredRecord[], partition: number): Promise<ReplicaOutcome[]>[] {
    const map = this.#map;
    const prefs = map.preferenceList(partition);
    const selfId = this.#membership.selfId;
    const standIns = map
      .ranking(partition)
      .slice(prefs.length)
      .filter((id) => this.#reachable(id));
    const out: Promise<ReplicaOutcome[]>[] = [];
    for (const id of prefs) {
      if (this.#reachable(id)) {
        const p = this.#writeOn(id, records);
        if (id !== selfId) {
          this.#track(
            p.then(
              (outcomes) => {
                const refused = records.filter((_, i) => isRefusal(outcomes[i]));
                return refused.length === 0 ? undefined : this.#keepHintLocally(id, refused);
              },
              () => this.#keepHintLocally(id, records),
            ),
          );
        }
        out.push(p);
        continue;
      }
      const standIn = standIns.shift();
      const handed = standIn === undefined ? this.#keepHintLocally(id, records) : this.#hintOn(standIn, id, records);
      if (this.config.hintsCountTowardConsistency && standIn !== undefined) out.push(handed.then(() => records.map(() => null)));
      else {
        this.#track(
          handed.catch((e: unknown) => {
            this.#onError(`handing hints for ${id} to ${standIn ?? 'a stand-in'}`, e);
            return this.#keepHintLocally(id, records);
          }),
        );
        out.push(Promise.reject(new Error(`replica ${id} is down`)));
        out.at(-1)!.catch(() => undefined);
      }
    }
    return out;
  }

  async #keepHintLocally(target: string, records: readonly StoredRecord[]): Promise<void> {
    this.counters.hintsKeptLocally++;
    try {
      await this.#hints.add(target, records, this.#timers.nowMs());
    } catch (e) {
      this.#onError('keeping a hint', e);
    }
  }

  async #hintOn(standIn: string, target: string, records: readonly StoredRecord[]): Promise<void> {
    if (standIn === this.#membership.selfId) {
      await this.#hints.add(target, records, this.#timers.nowMs());
    } else {
      await this.#peer(standIn).hint(target, records);
    }
    this.counters.hintsHandedToStandIns++;
  }

  /** Merges records into one replica; resolves with what it did with each (refusals for the clock counted). */
  async #writeOn(id: string, records: readonly StoredRecord[]): Promise<ReplicaOutcome[]> {
    let outcomes: ReplicaOutcome[];
    if (id === this.#membership.selfId) {
      const work = this.#store.applyEach(records);
      const applied = await (this.#storeHealth === undefined ? work : this.#storeHealth.observe(work));
      outcomes = applied.map((o, i) => replicaOutcome(o, records[i]!));
    } else {
      outcomes = await this.#peer(id).write(records);
    }
    for (const o of outcomes) if (isRefusal(o)) this.counters.replicaClockRefusals++;
    return outcomes;
  }

  /** The clock's figures for /metrics: offsets measured, the verdict, refusals. */
  #clockMetrics(): string[] {
    const status = this.#store.clockStatus();
    const lines = [
      ...metricFamily('hearsay_storage_versions_refused_total', 'counter',
        'Records and versions this node\'s store refused for being more than the maximum clock offset ahead of its clock.', [['', status.versionsRefused]]),
      ...metricFamily('hearsay_storage_stamps_refused_total', 'counter',
        'Local stamps this node\'s store refused while its clock ran more than the maximum offset ahead of its wall clock.', [['', status.stampsRefused]]),
      ...metricFamily('hearsay_cluster_replica_clock_refusals_total', 'counter',
        'Records replicas refused (from this coordinator, read repair and hints) as more than their maximum clock offset ahead of their clocks.',
        [['', this.counters.replicaClockRefusals]]),
      ...metricFamily('hearsay_cluster_writes_restamped_total', 'counter',
        'Writes stamped again because a replica held a higher version than the one they were stamped with (clocks within the offset differ).',
        [['', this.counters.writesRestamped]]),
    ];
    const fence = this.#clock;
    if (fence === undefined) return lines;
    const verdict = fence.verdict();
    const clocks = [...fence.memberClocks()].sort(([a], [b]) => utf8Compare(a, b));
    lines.push(
      ...metricFamily('hearsay_cluster_clock_max_offset_seconds', 'gauge', 'The maximum clock offset this node allows (--max-clock-offset-ms).', [
        ['', fence.maxOffsetMs / 1000],
      ]),
      ...metricFamily('hearsay_cluster_clock_offset_seconds', 'gauge',
        'Each member\'s clock minus this node\'s, as measured by gossip probes (positive: the member is ahead).',
        clocks.map(([id, o]) => [`member=${JSON.stringify(id)}`, o.offsetMs / 1000] as const)),
      ...metricFamily('hearsay_cluster_clock_offset_error_seconds', 'gauge', 'The error bound of each offset (half the probe round trip, widened as it ages).',
        clocks.map(([id, o]) => [`member=${JSON.stringify(id)}`, o.errorMs / 1000] as const)),
      ...metricFamily('hearsay_cluster_clock_state', 'gauge',
        'This node\'s clock verdict: 1 for the current state (ok, unverified, skewed, ahead); writes are coordinated only when ok.',
        (['ok', 'unverified', 'skewed', 'ahead'] as const).map((state) => [`state="${state}"`, verdict.state === state ? 1 : 0] as const)),
      ...metricFamily('hearsay_cluster_clock_writes_refused_total', 'counter', 'Client writes this node refused because of its clock, by state.',
        (['unverified', 'skewed', 'ahead'] as const).map((state) => [`state="${state}"`, fence.refusals[state]] as const)),
      ...metricFamily('hearsay_cluster_clock_jumps_total', 'counter', 'Wall-clock jumps this node noticed (offsets are measured again after one).', [
        ['', fence.jumps],
      ]),
    );
    return lines;
  }

  async #readOn(id: string, key: string): Promise<StoredRecord | undefined> {
    if (id === this.#membership.selfId) return this.#store.getRecord(key);
    const [r] = await this.#peer(id).read([key]);
    return r;
  }

  async #scanOn(id: string, request: ScanRequest): Promise<ScanResponse> {
    if (id === this.#membership.selfId) return scanLocal(this.#store, request);
    return this.#peer(id).scan(request);
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((e: unknown) => this.#onError('background replication', e));
    this.#background.add(q);
    void q.finally(() => this.#background.delete(q));
  }

  /** Resolves when background work started so far has finished (tests). */
  async settled(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }
}

/** What a conditional write checked before it was stamped; decides whether it may be stamped again past a version it lost to. */
interface Precondition {
  readonly ifMatch: Version | '*' | undefined;
  readonly ifNoneMatch: '*' | undefined;
}

const NO_PRECONDITION: Precondition = { ifMatch: undefined, ifNoneMatch: undefined };

function preconditionOf(ifMatch: Version | '*' | undefined, ifNoneMatch: '*' | undefined): Precondition {
  return ifMatch === undefined && ifNoneMatch === undefined ? NO_PRECONDITION : { ifMatch, ifNoneMatch };
}

/**
 * Whether a write may be stamped again past a record it lost to: always
 * without a precondition; with one, only if that record is one the
 * precondition accepts (`If-Match: V` the very version V, `If-Match: *` a
 * live record, `If-None-Match: *` a tombstone). Else the precondition no
 * longer holds (412).
 */
function allowsOver(p: Precondition, tombstone: boolean, held: Version): boolean {
  if (p.ifNoneMatch === '*' && !tombstone) return false;
  if (p.ifMatch === '*' && tombstone) return false;
  if (p.ifMatch !== undefined && p.ifMatch !== '*' && (tombstone || compareVersions(p.ifMatch, held) !== 0)) return false;
  return true;
}

function isRefusal(o: ReplicaOutcome | undefined): o is { readonly aheadMs: number } {
  return o !== null && o !== undefined && 'aheadMs' in o;
}

/** What `/v1/cluster` (on the node's own entry) and `/v1/health` show of the clock verdict. */
function clockView(v: ClockVerdict): Record<string, string | number | boolean> {
  return {
    state: v.state,
    maxOffsetMs: v.maxOffsetMs,
    reachable: v.reachable,
    within: v.within,
    beyond: v.beyond,
    measuring: v.measuring,
    ...(v.offsetMs === undefined ? {} : { offsetMs: v.offsetMs }),
    ...(v.errorMs === undefined ? {} : { errorMs: v.errorMs }),
    ...(v.stampsResumeAtMs === undefined ? {} : { stampsResumeAtMs: v.stampsResumeAtMs }),
    ...(v.reason === undefined ? {} : { reason: v.reason }),
  };
}

/** The answer to a write the clock fence refuses: 503 CLOCK_SKEW (skewed, ahead) or UNAVAILABLE (not verified yet). */
function clockRefusal(v: ClockVerdict): ServiceError {
  const details = {
    clockState: v.state,
    maxOffsetMs: v.maxOffsetMs,
    ...(v.offsetMs === undefined ? {} : { offsetMs: v.offsetMs }),
    ...(v.errorMs === undefined ? {} : { errorMs: v.errorMs }),
    ...(v.stampsResumeAtMs === undefined ? {} : { stampsResumeAtMs: v.stampsResumeAtMs }),
  };
  return new ServiceError(v.state === 'unverified' ? 'UNAVAILABLE' : 'CLOCK_SKEW', v.reason ?? `clock ${v.state}`, details);
}

/** The store's CLOCK_AHEAD (it stamps nothing until its wall clock catches up) as the client sees it. */
function storeClockRefusal(e: { message: string; details?: { aheadMs?: number; maxOffsetMs?: number; untilMs?: number } | undefined }): ServiceError {
  const d = e.details ?? {};
  return new ServiceError('CLOCK_SKEW', e.message, {
    clockState: 'ahead',
    ...(d.aheadMs === undefined ? {} : { offsetMs: d.aheadMs }),
    ...(d.maxOffsetMs === undefined ? {} : { maxOffsetMs: d.maxOffsetMs }),
    ...(d.untilMs === undefined ? {} : { stampsResumeAtMs: d.untilMs }),
  });
}

/** The store's VERSION_AHEAD on a local write: the key holds a version too far ahead to stamp past. */
function versionRefusal(e: { message: string; details?: { aheadMs?: number; maxOffsetMs?: number } | undefined }): ServiceError {
  const d = e.details ?? {};
  return new ServiceError('CLOCK_SKEW', e.message, {
    ...(d.aheadMs === undefined ? {} : { offsetMs: d.aheadMs }),
    ...(d.maxOffsetMs === undefined ? {} : { maxOffsetMs: d.maxOffsetMs }),
  });
}

/** Where a write goes when other nodes replicate its key too. */
interface Replicas {
  readonly partition: number;
  readonly prefs: readonly string[];
}

/** The rejection of `#withinDeadline` when the deadline passed first. */
const DEADLINE_PASSED: unique symbol = Symbol('deadline passed');

const encoder = new TextEncoder();
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(encoder.encode(a), encoder.encode(b));
}
function utf8Less(a: string, b: string): boolean {
  return utf8Compare(a, b) < 0;
}

/** The key a listing cursor resumes after (storage's cursor codec), or INVALID_CURSOR. */
function cursorKey(cursor: string): string {
  try {
    return decodeCursor(cursor);
  } catch {
    throw new ServiceError('INVALID_CURSOR', 'the cursor is not one this node made');
  }
}
