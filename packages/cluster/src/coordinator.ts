import {
  type AdminRequest,
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
import type { HintStore } from './hint-store.ts';
import { awaitJoint, type MemberAttempt, type QuorumSet } from './joint-quorum.ts';
import { isReachable, type MemberInfo, type MembershipView } from './membership.ts';
import { staticOwnership, type Ownership } from './ownership.ts';
import type { PartitionMap } from './partition-map.ts';
import type { Placement, ReplicaSets } from './placement.ts';
import type { PeerClient, PeerFactory, ScanRequest, ScanResponse } from './peer.ts';
import { requiredReplicas, settleWithin } from './quorum.ts';
import { metricFamily } from './prom-text.ts';
import { scanLocal } from './scan.ts';
import type { StoreWriteHealth } from './store-health.ts';
import type { Timers } from './timers.ts';

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
   * Who owns which partitions: the topology (topology.ts) in a node process.
   * Default: every member the view lists that is not `left` (`staticOwnership`).
   */
  readonly ownership?: Ownership;
  /** Runs membership operations (`POST /v1/admin/...`); absent, the node has none. */
  readonly admin?: (request: AdminRequest) => Promise<Record<string, unknown>>;
}

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
  /** Membership operations (KvService.admin), when this node has a topology. */
  declare readonly admin?: (request: AdminRequest) => Promise<Record<string, unknown>>;
  readonly #ownership: Ownership;
  readonly #ownsOwnership: boolean;
  #placement: Placement;
  /**
   * This node is the only ring member, so the only replica of every
   * partition (a one-node cluster, e.g. `hearsay start` without seeds).
   * Reads and writes then take the single-replica path without hashing the
   * key for its partition.
   */
  #solo: boolean;
  #index: Map<string, MemberInfo>;
  #stopped = false;
  readonly #unsubscribe: () => void;
  readonly #unsubscribePlacement: () => void;
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
    if (deps.admin !== undefined) {
      const run = deps.admin;
      const admin = async (request: AdminRequest): Promise<Record<string, unknown>> => {
        if (this.#stopped) throw new ServiceError('UNAVAILABLE', 'the node is shutting down');
        return run(request);
      };
      Object.defineProperty(this, 'admin', { value: admin, enumerable: true });
    }
    this.#ownsOwnership = deps.ownership === undefined;
    this.#ownership =
      deps.ownership ??
      staticOwnership(deps.membership, { partitionBits: this.config.partitionBits, replicationFactor: this.config.replicationFactor });
    this.#placement = this.#ownership.placement();
    this.#solo = this.#isSolo();
    this.#index = this.#indexMembers();
    this.#unsubscribe = this.#membership.onChange(() => {
      this.#index = this.#indexMembers();
    });
    this.#unsubscribePlacement = this.#ownership.onChange(() => {
      this.#placement = this.#ownership.placement();
      this.#solo = this.#isSolo();
    });
  }

  /** The current owners' partition map (the old sets while a membership change is in progress). */
  get partitionMap(): PartitionMap {
    return this.#placement.current;
  }

  /** The placement requests use now: old and new replica sets (docs/topology.md). */
  get placement(): Placement {
    return this.#placement;
  }

  partitionOf(key: string): number {
    return this.#placement.partitionOfHash(hashKey(key));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe();
    this.#unsubscribePlacement();
    if (this.#ownsOwnership) (this.#ownership as Ownership & { close?: () => void }).close?.();
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
    if (!this.#solo && !this.#selfOnly(this.#placement.sets(this.partitionOf(key)))) return null;
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
      version: this.#store.now(),
      tombstone: false,
      ...(contentType === undefined ? {} : { contentType }),
    };
    await this.#write(record, replicas, options.consistency);
    return record;
  }

  async delete(key: string, options: DeleteOptions): Promise<StoredRecord> {
    this.#checkServing();
    if (options.ifMatch !== undefined) await this.#checkPreconditions(key, options.consistency, options.ifMatch, undefined);
    const replicas = this.#replicasOf(key);
    if (replicas === null) return this.#writeSelf(this.#store.delete(key));
    const record: StoredRecord = { key, value: new Uint8Array(0), version: this.#store.now(), tombstone: true };
    await this.#write(record, replicas, options.consistency);
    return record;
  }

  /**
   * A listing merged from every reachable member's scan (tombstones included,
   * per key the record that wins by last-write-wins). Answered only when
   * every partition had at least R of its replicas among the members that answered.
   */
  async list(options: ListOptions): Promise<ListPage> {
    this.#checkServing();
    const after = options.cursor === undefined ? undefined : cursorKey(options.cursor);
    const placement = this.#placement;
    const targets = this.#reachableMembers().map((m) => m.id);
    const request: ScanRequest = { prefix: options.prefix, limit: options.limit, ...(after === undefined ? {} : { after }) };
    const outcome = await settleWithin(
      targets.map((id) => this.#scanOn(id, request)),
      this.#timers,
      this.config.requestTimeoutMs,
    );
    const answered = new Set(outcome.answers.map((a) => targets[a.index]!));
    // Every partition needs R of its old set and, while it moves, R of its new set too.
    for (let p = 0; p < placement.partitionCount; p++) {
      const sets = placement.sets(p);
      for (const set of sets.moving ? [sets.old, sets.next] : [sets.old]) {
        const need = requiredReplicas(options.consistency, set.length);
        const have = set.filter((m) => answered.has(m)).length;
        if (have < need) throw insufficientReplicas(have, need, set.length);
      }
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
    const placement = this.#placement;
    const topology = this.#ownership.report();
    return {
      self: this.#membership.selfId,
      members: this.#membership
        .members()
        .map((m) => {
          const ring = this.#ownership.statusOf(m.id);
          // A live member taking over or handing off partitions shows as joining / leaving.
          const moving = ring === 'joining' || ring === 'leaving';
          return {
            id: m.id,
            state: moving && isReachable(m) ? ring : m.state,
            http: m.http,
            gossip: m.gossip,
            incarnation: m.incarnation,
            ...(m.keys === undefined ? {} : { keys: m.keys }),
            ...(m.status === undefined ? {} : { status: m.status }),
            ...(ring === undefined ? {} : { ring }),
            partitions: [...placement.current.partitionsOf(m.id)],
          };
        })
        .sort((a, b) => utf8Compare(a.id, b.id)),
      ...(topology === undefined ? {} : { topology }),
    };
  }

  async health(): Promise<HealthReport> {
    if (this.#stopped) return { ok: false, reason: 'stopping' };
    const notServing = this.#ownership.notServing();
    if (notServing !== undefined) return { ok: false, reason: notServing };
    const storeProblem = this.#storeHealth?.problem();
    if (storeProblem !== undefined) return { ok: false, reason: storeProblem };
    const members = this.#membership.members();
    return {
      ok: true,
      members: members.length,
      reachable: members.filter((m) => m.id === this.#membership.selfId || isReachable(m)).length,
      replicationFactor: this.#placement.current.replicationFactor,
      hints: this.#hints.count(),
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
      ...metricFamily('hearsay_cluster_hints', 'gauge', 'Hints kept on this node for other members.', [['', h.hints]]),
      ...metricFamily('hearsay_cluster_hints_total', 'counter', 'Hints by what happened to them.', [
        ['event="stored"', h.stored],
        ['event="refused"', h.refused],
        ['event="delivered"', h.delivered],
        ['event="expired"', h.expired],
        ['event="handed_to_stand_in"', c.hintsHandedToStandIns],
      ]),
      ...metricFamily('hearsay_cluster_members', 'gauge', 'Members known, by state.',
        ['alive', 'suspect', 'dead', 'left'].map((state) => [`state="${state}"`, byState.get(state) ?? 0] as const)),
    ].join('\n') + '\n' + this.#ownership.metrics() + (this.#extraMetrics?.() ?? '');
  }

  // Internals ------------------------------------------------------------------

  #checkServing(): void {
    if (this.#stopped) throw new ServiceError('UNAVAILABLE', 'the node is shutting down');
    const notServing = this.#ownership.notServing();
    if (notServing !== undefined) throw new ServiceError('UNAVAILABLE', `this node does not serve now: ${notServing}`);
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

  /** This node alone owns everything and nothing moves. */
  #isSolo(): boolean {
    const p = this.#placement;
    return (
      this.config.singleReplicaFastPath &&
      p.owners.length === 1 &&
      p.owners[0] === this.#membership.selfId &&
      p.targets.length === 1 &&
      p.targets[0] === this.#membership.selfId
    );
  }

  /** Whether a partition's replicas are this node alone (and it does not move): then requests take the single-replica path. */
  #selfOnly(sets: ReplicaSets): boolean {
    return this.config.singleReplicaFastPath && !sets.moving && sets.old.length === 1 && sets.old[0] === this.#membership.selfId;
  }

  /** Reads the last-write-wins winner among R replicas; read-repairs stale ones in the background. */
  #read(key: string, consistency: Consistency): Promise<StoredRecord | undefined> {
    if (this.#solo) return this.#readSelf(key);
    const sets = this.#placement.sets(this.partitionOf(key));
    if (this.#selfOnly(sets)) return this.#readSelf(key);
    return this.#readReplicas(key, sets, consistency);
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

  /**
   * Reads from every reachable member of the old and new sets; answered once
   * each set has R answers (one set when the partition does not move).
   */
  async #readReplicas(key: string, sets: ReplicaSets, consistency: Consistency): Promise<StoredRecord | undefined> {
    const targets = sets.all.filter((id) => this.#reachable(id));
    const attempts = targets.map((id) => this.#readOn(id, key));
    const outcome = await awaitJoint(
      attempts.map((promise, i) => ({ member: targets[i]!, promise })),
      quorumSets(sets, consistency),
      this.#timers,
      this.config.requestTimeoutMs,
    );
    if (!outcome.ok) {
      this.counters.readFailures++;
      if (outcome.timedOut) {
        throw new ServiceError('TIMEOUT', `${outcome.required} of ${outcome.total} replicas required, ${outcome.acknowledged} answered in time`, {
          acknowledged: outcome.acknowledged,
          required: outcome.required,
        });
      }
      throw insufficientReplicas(outcome.acknowledged, outcome.required, outcome.total);
    }
    const best = newest(outcome.answers.map((a) => a.value));
    if (best !== undefined) this.#store.observe(best.version);
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
        await this.#writeOn(targets[a.index]!, [best]);
      }),
    );
  }

  /** A write to the replicas of a key that has others besides this node (`#replicasOf`). */
  #write(record: StoredRecord, replicas: Replicas, consistency: Consistency): Promise<void> {
    this.counters.writes++;
    return this.#writeReplicas(record, replicas, consistency);
  }

  /** The key's partition and replica sets; null when this node is its only replica (writes then take `#writeSelf`). */
  #replicasOf(key: string): Replicas | null {
    if (this.#solo) return null;
    const placement = this.#placement;
    const partition = placement.partitionOfHash(hashKey(key));
    const sets = placement.sets(partition);
    return this.#selfOnly(sets) ? null : { placement, partition, sets };
  }

  /**
   * Sends the record to every member of the old and new sets; acknowledged
   * once each set has W (one set when the partition does not move). The
   * ownership hears when the write settled: a node acknowledges a new
   * placement only after the writes of earlier ones settled.
   */
  async #writeReplicas(record: StoredRecord, replicas: Replicas, consistency: Consistency): Promise<void> {
    const sets = quorumSets(replicas.sets, consistency);
    this.#admit(sets);
    const settled = this.#ownership.writeStarted(replicas.placement);
    let outcome;
    try {
      outcome = await awaitJoint(this.#replicate([record], replicas), sets, this.#timers, this.config.requestTimeoutMs);
    } finally {
      settled();
    }
    if (!outcome.ok) {
      this.counters.writeFailures++;
      if (outcome.timedOut) {
        throw new ServiceError('TIMEOUT', `${outcome.required} of ${outcome.total} replicas required, ${outcome.acknowledged} acknowledged in time`, {
          acknowledged: outcome.acknowledged,
          required: outcome.required,
        });
      }
      throw insufficientReplicas(outcome.acknowledged, outcome.required, outcome.total);
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
  #admit(sets: readonly QuorumSet[]): void {
    for (const { members, need } of sets) {
      let room = 0;
      for (const id of members) {
        if (id === this.#membership.selfId) room++;
        else if (this.#reachable(id) && this.#peer(id).hasRoom?.() !== false) room++;
        if (room >= need) break;
      }
      if (room >= need) continue;
      const reachable = members.filter((id) => this.#reachable(id)).length;
      // Replicas down are INSUFFICIENT_REPLICAS (the write goes on to give them hints); only busy ones shed.
      if (reachable < need) continue;
      this.counters.writeFailures++;
      this.counters.writesShed++;
      throw new ServiceError('BUSY', `the replicas of this key have too much queued (${room} of ${need} required can take a write now); retry later`, {
        acknowledged: 0,
        required: need,
      });
    }
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
      if (e !== DEADLINE_PASSED) this.#storeHealth?.noteFailure(e);
      if (isStorageError(e, 'STORE_CLOSED')) throw e;
      this.counters.writes++;
      this.counters.writeFailures++;
      if (e === DEADLINE_PASSED) {
        throw new ServiceError('TIMEOUT', '1 of 1 replicas required, 0 acknowledged in time', { acknowledged: 0, required: 1 });
      }
      throw insufficientReplicas(0, 1, 1);
    }
  }

  /**
   * Sends records of one partition to its replicas — the old and the new
   * set's members, while it moves; one attempt per replica that resolves
   * when that replica (or, with `hintsCountTowardConsistency`, its stand-in)
   * holds them durably.
   *
   * - This node: applied to the local store.
   * - A reachable replica: written over the internode API; if that fails, a
   *   hint is kept on this node (not counted: the caller already failed it).
   * - A replica membership reports down: the records go as a hint to the
   *   first reachable member beyond the preference list in the partition's
   *   HRW ranking (the stand-in), which delivers them when the replica is
   *   back; with no stand-in this node keeps the hint.
   */
  #replicate(records: readonly StoredRecord[], replicas: Replicas): MemberAttempt<unknown>[] {
    const { placement, partition, sets } = replicas;
    const selfId = this.#membership.selfId;
    const standIns = placement.next
      .ranking(partition)
      .filter((id) => !sets.all.includes(id) && this.#reachable(id));
    const out: MemberAttempt<unknown>[] = [];
    for (const id of sets.all) {
      if (this.#reachable(id)) {
        const p = this.#writeOn(id, records);
        if (id !== selfId) {
          this.#track(p.catch(() => this.#keepHintLocally(id, records)));
        }
        out.push({ member: id, promise: p });
        continue;
      }
      const standIn = standIns.shift();
      const handed = standIn === undefined ? this.#keepHintLocally(id, records) : this.#hintOn(standIn, id, records);
      if (this.config.hintsCountTowardConsistency && standIn !== undefined) out.push({ member: id, promise: handed });
      else {
        this.#track(handed.catch(() => this.#keepHintLocally(id, records)));
        const down = Promise.reject(new Error(`replica ${id} is down`));
        down.catch(() => undefined);
        out.push({ member: id, promise: down });
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

  async #writeOn(id: string, records: readonly StoredRecord[]): Promise<void> {
    if (id === this.#membership.selfId) {
      const work = this.#store.applyMany(records);
      await (this.#storeHealth === undefined ? work : this.#storeHealth.observe(work));
      return;
    }
    await this.#peer(id).write(records);
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

/** Where a write goes when other nodes replicate its key too. */
interface Replicas {
  /** The placement the write started under. */
  readonly placement: Placement;
  readonly partition: number;
  readonly sets: ReplicaSets;
}

/** The consistency level's count of each replica set: the old set, and the new one while the partition moves. */
function quorumSets(sets: ReplicaSets, consistency: Consistency): QuorumSet[] {
  const of = (members: readonly string[]): QuorumSet => ({ members, need: requiredReplicas(consistency, members.length) });
  return sets.moving ? [of(sets.old), of(sets.next)] : [of(sets.old)];
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
