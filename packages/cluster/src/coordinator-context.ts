/**
 * What the parts of the coordinator share: its settings, its counters, and
 * the node as the parts see it — the local store, the clock and the fence
 * on it, the members, how to reach them, and who owns which partitions (the
 * placement). `Coordinator` (coordinator.ts) builds one and hands it to the
 * replica read and write paths, the preconditions, the listing and the node
 * report.
 */
import type { Clock } from '@hearsay/clock';
import type { Store, StoredRecord } from '@hearsay/storage';
import type { ClockFence } from './clock-fence.ts';
import type { HintStore } from './hint-store.ts';
import type { MemberInfo } from './membership.ts';
import type { Ownership } from './ownership.ts';
import type { Placement } from './placement.ts';
import type { PeerClient } from './peer.ts';
import type { StoreWriteHealth } from './store-health.ts';

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

export interface CoordinatorContext {
  readonly config: CoordinatorConfig;
  readonly counters: CoordinatorCounters;
  readonly store: Store;
  readonly clock: Clock;
  /** Judges this node's clock against the members it reaches (clock-fence.ts); none: never fenced (tests of other things). */
  readonly clockFence: ClockFence | undefined;
  readonly hints: HintStore;
  readonly storeHealth: StoreWriteHealth | undefined;
  /** This node's member id. */
  readonly selfId: string;
  /**
   * The placement requests use now (from `ownership`): each partition's old
   * replica set and, while it moves, its new one (docs/topology.md).
   */
  readonly placement: Placement;
  /** Who owns what: the topology in a node process, else the static ownership of the member set. */
  readonly ownership: Ownership;
  /** Whether a member can be sent requests now (this node always can). */
  reachable(id: string): boolean;
  /** The members requests can go to now, this node included. */
  reachableMembers(): MemberInfo[];
  /** The internode client of a member. */
  peer(id: string): PeerClient;
  /** A live record at this node's time: not a tombstone, not expired. */
  isLive(r: StoredRecord | undefined): r is StoredRecord;
  /** Background work (read repair, hints) that `stop()` waits for; a failure is told to `onError`. */
  track(p: Promise<unknown>): void;
  onError(what: string, error: unknown): void;
}
