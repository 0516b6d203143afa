/**
 * The coordinator: the node's `KvService`, and where a request is routed —
 * to the single-replica path here, or to the replicas of its key's
 * partition (replica-read.ts, replica-write.ts). The other parts: the
 * preconditions of conditional writes (preconditions.ts), the merged listing
 * (listing.ts), the node report (node-report.ts) and how writes meet the
 * clock (clock-answers.ts); what they share is in coordinator-context.ts.
 */
import type { Clock } from '@hearsay/clock';
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
  type ListOptions,
  type ListPage,
  type PutOptions,
  type RepairLine,
  type RepairOptions,
} from '@hearsay/service';
import { hashKey, isLive, isStorageError } from '@hearsay/storage';
import type { Store, StoredRecord } from '@hearsay/storage';
import { checkClock, stamp, storeClockRefusal, versionRefusal } from './clock-answers.ts';
import type { ClockFence } from './clock-fence.ts';
import { DEFAULT_COORDINATOR_CONFIG, type CoordinatorConfig, type CoordinatorContext, type CoordinatorCounters } from './coordinator-context.ts';
import type { HintStore } from './hint-store.ts';
import { listMerged } from './listing.ts';
import { isReachable, type MemberInfo, type MembershipView } from './membership.ts';
import { NodeReport } from './node-report.ts';
import { staticOwnership, type Ownership } from './ownership.ts';
import type { PartitionMap } from './partition-map.ts';
import type { Placement, ReplicaSets } from './placement.ts';
import type { PeerClient, PeerFactory } from './peer.ts';
import { checkPreconditions, preconditionOf, type Precondition } from './preconditions.ts';
import { ReplicaReader } from './replica-read.ts';
import { ReplicaWriter, type Replicas } from './replica-write.ts';
import type { StoreWriteHealth } from './store-health.ts';

export interface CoordinatorDeps {
  readonly store: Store;
  readonly membership: MembershipView;
  readonly peers: PeerFactory;
  readonly hints: HintStore;
  readonly clock: Clock;
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
  /**
   * Judges this node's clock against the members it reaches (clock-fence.ts):
   * writes are coordinated only while it says `ok`. None: never fenced
   * (tests of other things).
   */
  readonly clockFence?: ClockFence;
}

/**
 * The coordinator: any node takes any request and runs it against the RF
 * replicas of the key's partition. Implements the HTTP app's `KvService`.
 *
 * - Writes: the version is stamped by THIS node's store clock; the same record
 *   is sent to every replica of the preference list in parallel (applied
 *   locally when this node is one) and acknowledged after W confirmed.
 *   A replica that membership reports down gets a hint (replica-write.ts).
 *   A replica that holds a higher version answers with it, and the write is
 *   stamped again past it (or refused: never a 204 that changed nothing).
 *   A node whose clock is fenced (clock-fence.ts) stamps no write.
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
  readonly #clock: Clock;
  readonly #onError: (what: string, error: unknown) => void;
  readonly #storeHealth: StoreWriteHealth | undefined;
  readonly #ctx: CoordinatorContext;
  readonly #reader: ReplicaReader;
  readonly #writer: ReplicaWriter;
  readonly #report: NodeReport;
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
    this.#clock = deps.clock;
    this.#onError = deps.onError ?? (() => undefined);
    this.#storeHealth = deps.storeHealth;
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
    const readPlacement = (): Placement => this.#placement;
    this.#ctx = {
      config: this.config,
      counters: this.counters,
      store: deps.store,
      clock: deps.clock,
      clockFence: deps.clockFence,
      hints: deps.hints,
      storeHealth: deps.storeHealth,
      selfId: deps.membership.selfId,
      get placement() {
        return readPlacement();
      },
      ownership: this.#ownership,
      reachable: (id) => this.#reachable(id),
      reachableMembers: () => this.#reachableMembers(),
      peer: (id) => this.#peer(id),
      isLive: (r): r is StoredRecord => this.#isLive(r),
      track: (p) => this.#track(p),
      onError: (what, error) => this.#onError(what, error),
    };
    this.#writer = new ReplicaWriter(this.#ctx);
    this.#reader = new ReplicaReader(this.#ctx, this.#writer);
    this.#report = new NodeReport(this.#ctx, {
      membership: deps.membership,
      ...(deps.repair === undefined ? {} : { repair: deps.repair }),
      ...(deps.extraMetrics === undefined ? {} : { extraMetrics: deps.extraMetrics }),
      stopped: () => this.#stopped,
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
    checkClock(this.#ctx);
    // Awaited only when there is something to check: a PUT without preconditions takes no extra promise turn.
    if (options.ifMatch !== undefined || options.ifNoneMatch !== undefined) {
      await checkPreconditions(this.#ctx, (k, c) => this.#read(k, c), key, options.consistency, options.ifMatch, options.ifNoneMatch);
    }
    const contentType = options.contentType;
    const replicas = this.#replicasOf(key);
    // The value is handed over (KvService.put): the general path keeps it as is too.
    if (replicas === null) return this.#writeSelf(this.#store.put(key, value, handedOverPutOptions(contentType)));
    const record: StoredRecord = {
      key,
      value,
      version: stamp(this.#store),
      tombstone: false,
      ...(contentType === undefined ? {} : { contentType }),
    };
    return this.#write(record, replicas, options.consistency, preconditionOf(options.ifMatch, options.ifNoneMatch));
  }

  async delete(key: string, options: DeleteOptions): Promise<StoredRecord> {
    this.#checkServing();
    checkClock(this.#ctx);
    if (options.ifMatch !== undefined) await checkPreconditions(this.#ctx, (k, c) => this.#read(k, c), key, options.consistency, options.ifMatch, undefined);
    const replicas = this.#replicasOf(key);
    if (replicas === null) return this.#writeSelf(this.#store.delete(key));
    const record: StoredRecord = { key, value: new Uint8Array(0), version: stamp(this.#store), tombstone: true };
    return this.#write(record, replicas, options.consistency, preconditionOf(options.ifMatch, undefined));
  }

  /**
   * A listing merged from every reachable member's scan (listing.ts).
   */
  async list(options: ListOptions): Promise<ListPage> {
    this.#checkServing();
    return listMerged(this.#ctx, options);
  }

  async cluster(): Promise<ClusterView> {
    return this.#report.cluster();
  }

  async health(): Promise<HealthReport> {
    return this.#report.health();
  }

  repair(options: RepairOptions): AsyncIterable<RepairLine> {
    return this.#report.repair(options);
  }

  metrics(): string {
    return this.#report.metrics();
  }

  // Routing --------------------------------------------------------------------

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
    return isLive(r, this.#clock.now());
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
    return this.#reader.read(key, sets, consistency);
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
   * of `clock` time passed first: the deadline `awaitAnswers` sets.
   */
  #withinDeadline<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancelTimer = this.#clock.setTimer(() => reject(DEADLINE_PASSED), this.config.requestTimeoutMs);
      work.then(
        (value) => {
          cancelTimer();
          resolve(value);
        },
        (error: unknown) => {
          cancelTimer();
          reject(error);
        },
      );
    });
  }

  /** A write to the replicas of a key that has others besides this node (`#replicasOf`); resolves with the record acknowledged. */
  #write(record: StoredRecord, replicas: Replicas, consistency: Consistency, precondition: Precondition): Promise<StoredRecord> {
    return this.#writer.write(record, replicas, consistency, precondition);
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
   * A write when this node is the key's only replica: W is 1 at every
   * consistency level and no stand-in or hint is involved (this node is always
   * reachable), so it is the local store's own `put` or `delete`, whose
   * version comes from the same clock the general path stamps with. The
   * store's local path is its fastest: no validation of a record built here,
   * no last-write-wins contest with the record it replaces (a fresh version
   * is above every version the store holds; one above the clock, from a
   * remote clock ahead within the maximum offset, is stamped past rather
   * than lost to; one further ahead is refused: 503 CLOCK_SKEW). Same
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
      // Refused by the clock bound: nothing wrong with the store.
      const clockRefused = isStorageError(e, 'CLOCK_AHEAD') || isStorageError(e, 'VERSION_AHEAD');
      if (e !== DEADLINE_PASSED && !clockRefused) this.#storeHealth?.noteFailure(e);
      if (isStorageError(e, 'STORE_CLOSED')) throw e;
      this.counters.writes++;
      this.counters.writeFailures++;
      if (isStorageError(e, 'CLOCK_AHEAD')) throw storeClockRefusal(e);
      if (isStorageError(e, 'VERSION_AHEAD')) throw versionRefusal(e);
      if (e === DEADLINE_PASSED) {
        throw new ServiceError('TIMEOUT', '1 of 1 replicas required, 0 acknowledged in time', { acknowledged: 0, required: 1 });
      }
      throw insufficientReplicas(0, 1, 1);
    }
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

/** The rejection of `#withinDeadline` when the deadline passed first. */
const DEADLINE_PASSED: unique symbol = Symbol('deadline passed');
