import { backgroundClock, type Clock } from '@hearsay/clock';
import type { BodyBudget } from '@hearsay/service';
import type { Hono } from 'hono';
import type { Store } from '@hearsay/storage';
import { AntiEntropy, DEFAULT_ANTI_ENTROPY_CONFIG, type RepairRange } from './anti-entropy.ts';
import { ClockFence, type ClockOffsetSource, type ClockVerdict } from './clock-fence.ts';
import { DEFAULT_COORDINATOR_CONFIG } from './coordinator-context.ts';
import { Coordinator } from './coordinator.ts';
import { ClusterError } from './errors.ts';
import { DEFAULT_HANDOFF_CONFIG, HintedHandoff } from './handoff.ts';
import { HintStore, type HintsDb } from './hint-store.ts';
import { toClusterKeys, type ClusterKeyInput } from './cluster-keys.ts';
import { createHttpTransport, type InternodeTls } from './http-transport.ts';
import {
  batchBytesOf,
  createInternodeApp,
  DEFAULT_MAX_INTERNODE_BODY_BYTES,
  InternodeStats,
  internodeMetrics,
  MIN_INTERNODE_BODY_BYTES,
} from './internode-app.ts';
import { createInternodeHandler, type RepairResponder } from './internode-handler.ts';
import type { InternodeRequest } from './internode-messages.ts';
import type { MemberInfo, MembershipView } from './membership.ts';
import type { PeerClient, PeerFactory } from './peer.ts';
import { DEFAULT_MAX_QUEUED_BYTES, InternodePeerClient, type InternodeTransport } from './peer-client.ts';
import { DEFAULT_MAX_NONCES } from './nonce-cache.ts';
import { metricFamily } from './prom-text.ts';
import { StoreWriteHealth } from './store-health.ts';
import { createRepairRange, createRepairResponder } from './repair-adapter.ts';
import { DEFAULT_TOPOLOGY_CONFIG, Topology, type TopologyEvent, type TopologyExit } from './topology.ts';
import type { TopologyPersistence } from './topology-store.ts';

export interface ClusterConfig {
  /** Replicas per partition, capped at the member count. Default 3. */
  readonly replicationFactor: number;
  /** 2^partitionBits partitions (must not exceed the store's bucketBits). Default 8 = 256. */
  readonly partitionBits: number;
  /** How long a client request waits for replicas. Default 2000 ms. */
  readonly requestTimeoutMs: number;
  /** Whether a stand-in holding a hint counts toward the consistency level. Default false. */
  readonly hintsCountTowardConsistency: boolean;
  /** Background read repair. Default true. */
  readonly readRepair: boolean;
  /** Hints older than this are dropped. Default 3 h. */
  readonly hintWindowMs: number;
  /** How often hints are offered to live targets. Default 10 s. */
  readonly handoffIntervalMs: number;
  /** Bound on hints kept for one target. Default 100 000. */
  readonly maxHintsPerTarget: number;
  /** Pause between two partitions of background repair; 0 disables it. Default 1000 ms. */
  readonly repairPartitionIntervalMs: number;
  /** Tombstones younger than this are never purged; at least `hintWindowMs`. Default 1 day. */
  readonly tombstoneGraceMs: number;
  /** Bytes per second one repair session may put on the wire; 0 = unlimited. Default 16 MiB/s. */
  readonly repairRateLimitBytesPerSec: number;
  /** Per internode request. Default 2000 ms. */
  readonly peerTimeoutMs: number;
  /** Internode requests in flight per peer. Default 32. */
  readonly peerMaxInFlight: number;
  /** Internode requests waiting per peer before PEER_OVERLOADED. Default 1024. */
  readonly peerMaxQueued: number;
  /** Records per replication batch. Default 128. */
  readonly peerMaxBatchRecords: number;
  /** How long a write waits to join a batch while another is in flight. Default 2 ms. */
  readonly peerBatchDelayMs: number;
  /** Read requests in flight per peer; reads issued meanwhile travel together in the next one. Default 2. */
  readonly peerMaxReadsInFlight: number;
  /**
   * The largest internode request body this node reads (413 past it), and
   * the one setting every byte budget of replication comes from: a sender
   * keeps each request (a batch of writes or hints) to a quarter of it, a
   * responder each answer (read, scan) likewise, and an answer over it is
   * refused. Every node of a cluster should use the same. Default 16 MiB;
   * at least 4 MiB.
   */
  readonly internodeMaxBodyBytes: number;
  /** Bytes of writes queued or in flight per peer; past it writes to that peer fail at once (hint, or 503 BUSY). Default 64 MiB. */
  readonly peerMaxQueuedBytes: number;
  /** Nonces of recent internode requests remembered to refuse replays (about 100 bytes each). Default 100 000. */
  readonly maxNonces: number;
  /** Topology: how often the ownership table is compared with the members' and the next step of a change taken. Default 1000 ms. */
  readonly ringSyncIntervalMs: number;
  /** Topology: bytes per second of records streamed into this node when it takes partitions over; 0 = unlimited. Default 32 MiB/s. */
  readonly streamRateLimitBytesPerSec: number;
  /** Topology: records per stream page (a page also stays within a quarter of `internodeMaxBodyBytes`). Default 4096. */
  readonly streamPageRecords: number;
  /** Topology: partitions a node fills at once when it takes partitions over. Default 4. */
  readonly transferConcurrency: number;
}

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = {
  replicationFactor: DEFAULT_COORDINATOR_CONFIG.replicationFactor,
  partitionBits: DEFAULT_COORDINATOR_CONFIG.partitionBits,
  requestTimeoutMs: DEFAULT_COORDINATOR_CONFIG.requestTimeoutMs,
  hintsCountTowardConsistency: DEFAULT_COORDINATOR_CONFIG.hintsCountTowardConsistency,
  readRepair: DEFAULT_COORDINATOR_CONFIG.readRepair,
  hintWindowMs: DEFAULT_HANDOFF_CONFIG.windowMs,
  handoffIntervalMs: DEFAULT_HANDOFF_CONFIG.intervalMs,
  maxHintsPerTarget: 100_000,
  repairPartitionIntervalMs: DEFAULT_ANTI_ENTROPY_CONFIG.partitionIntervalMs,
  tombstoneGraceMs: DEFAULT_ANTI_ENTROPY_CONFIG.tombstoneGraceMs,
  repairRateLimitBytesPerSec: 16 * 1024 * 1024,
  peerTimeoutMs: 2000,
  peerMaxInFlight: 32,
  peerMaxQueued: 1024,
  peerMaxBatchRecords: 128,
  peerBatchDelayMs: 2,
  peerMaxReadsInFlight: 2,
  internodeMaxBodyBytes: DEFAULT_MAX_INTERNODE_BODY_BYTES,
  peerMaxQueuedBytes: DEFAULT_MAX_QUEUED_BYTES,
  maxNonces: DEFAULT_MAX_NONCES,
  ringSyncIntervalMs: DEFAULT_TOPOLOGY_CONFIG.ringSyncIntervalMs,
  streamRateLimitBytesPerSec: DEFAULT_TOPOLOGY_CONFIG.streamRateLimitBytesPerSec,
  streamPageRecords: DEFAULT_TOPOLOGY_CONFIG.streamPageRecords,
  transferConcurrency: DEFAULT_TOPOLOGY_CONFIG.transferConcurrency,
};

/** What a node process needs for membership changes (docs/topology.md). */
export interface ClusterTopologyOptions {
  /** Where the ownership table and the progress of a fill live (`fileTopologyPersistence(<data dir>/ring.json)`). */
  readonly persistence: TopologyPersistence;
  /** The node was started with seeds: without a ring entry it joins the cluster they lead to (else it founds one). */
  readonly seeds: boolean;
  /** `--replace`: this new data dir takes over the member with the store's node id. */
  readonly replace?: boolean;
  /** This node's gossip address, kept in its ring entry (restart seeds for the others). */
  readonly gossipAddress?: string;
  readonly onEvent?: (event: TopologyEvent) => void;
  /** Called once when the node must stop: decommissioned (exit 0), removed or replaced (exit 1). */
  readonly onExit?: (exit: TopologyExit) => void;
}

export interface ClusterNodeOptions {
  /** This node's store (its `nodeId` is the member id). */
  readonly store: Store;
  /** Where hints live: `hintsSublevel(db)` of the data database, or any `HintsDb`. */
  readonly hintsDb: HintsDb;
  readonly membership: MembershipView;
  /** The cluster key for internode authentication, or the keys of a rotation (`ClusterKeys`); unset = no authentication. */
  readonly clusterKey?: ClusterKeyInput;
  /** TLS to members whose HTTP address is `https://` (default transport only). */
  readonly tls?: InternodeTls;
  /**
   * How to reach a member. Default: HTTP to `member.http` + `/internal`,
   * signed with `clusterKey`. The simulation passes one over its network.
   */
  readonly peerFactory?: PeerFactory;
  /** Makes the transport for a member when `peerFactory` is not given (tests). */
  readonly transportFactory?: (member: MemberInfo) => InternodeTransport;
  readonly config?: Partial<ClusterConfig>;
  /** Time for every timer and deadline of the node. Default: `backgroundClock` of `@hearsay/clock` (real time; timers never keep the process alive). */
  readonly clock?: Clock;
  /** Default: sessions of `@hearsay/repair` over the internode API. */
  readonly repairRange?: RepairRange;
  /** Salt source of repair sessions (seeded in the simulation); default random. */
  readonly repairSalt?: () => Uint8Array;
  /** Default: the `@hearsay/repair` responder over this node's store. */
  readonly repairResponder?: RepairResponder;
  /** Told about background failures (a peer down, a hint that could not be kept, ...). */
  readonly onError?: (what: string, error: unknown) => void;
  /**
   * The node's request-body budget (the HTTP app's): internode requests take
   * their bodies' bytes from it once authenticated, so public PUTs and
   * replication together never hold more than its cap. None: no budget.
   */
  readonly load?: BodyBudget;
  /**
   * Membership changes with streaming (docs/topology.md): the ownership
   * table kept in sync with the other members. Absent: every member the
   * view lists that is not `left` owns partitions, and nothing is streamed
   * (tests with a fixed member set).
   */
  readonly topology?: ClusterTopologyOptions;
  /**
   * The members' clock offsets as gossip measures them (the gossip runtime:
   * `GossipRuntime.clockOffsets()`): the node fences itself on them
   * (clock-fence.ts). None: nothing to compare with; only the store's own
   * clock is watched. The maximum offset is the store's (`maxClockOffsetMs`).
   */
  readonly clockOffsets?: ClockOffsetSource;
  /** A clock that never jumps, to notice the wall clock (`clock.now`) jumping. Default `performance.now`. */
  readonly monotonicMs?: () => number;
  /** Told when this node's clock verdict changes (fenced, back in bounds), and when its wall clock jumped. */
  readonly onClockChange?: (verdict: ClockVerdict, previous: ClockVerdict) => void;
  readonly onClockJump?: (jumpMs: number) => void;
}

export interface ClusterNode {
  readonly nodeId: string;
  /** The coordinator: pass as `service` to `createApp` of `@hearsay/http`. */
  readonly service: Coordinator;
  /** The internode routes: pass as `internal` to `createApp` (mounted under `/internal`). */
  readonly internalApp: Hono;
  /** The internode handler itself, for transports other than HTTP (the simulation). */
  readonly handleInternode: (request: InternodeRequest) => Promise<unknown>;
  readonly hints: HintStore;
  readonly handoff: HintedHandoff;
  readonly antiEntropy: AntiEntropy;
  /** The topology, when `options.topology` was given. */
  readonly topology: Topology | undefined;
  /** This node's clock verdict (writes are coordinated only while it is `ok`). */
  readonly clockFence: ClockFence;
  readonly config: ClusterConfig;
  /** Loads the hint store and starts hinted handoff and background repair. */
  start(): Promise<void>;
  /** Stops background work and refuses new requests; does not close the store. */
  stop(): Promise<void>;
}

export function validateClusterConfig(config: ClusterConfig, bucketBits: number): void {
  const positive = (name: keyof ClusterConfig, min = 1): void => {
    const v = config[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ClusterError('BAD_CONFIG', `${name} must be an integer >= ${min}`);
  };
  positive('replicationFactor');
  positive('partitionBits', 0);
  positive('requestTimeoutMs');
  positive('hintWindowMs', 0);
  positive('handoffIntervalMs');
  positive('maxHintsPerTarget', 0);
  positive('repairPartitionIntervalMs', 0);
  positive('tombstoneGraceMs', 0);
  positive('repairRateLimitBytesPerSec', 0);
  positive('peerTimeoutMs');
  positive('peerMaxInFlight');
  positive('peerMaxQueued', 0);
  positive('peerMaxBatchRecords');
  positive('peerBatchDelayMs', 0);
  positive('peerMaxReadsInFlight');
  positive('internodeMaxBodyBytes', MIN_INTERNODE_BODY_BYTES);
  positive('peerMaxQueuedBytes');
  positive('maxNonces');
  positive('ringSyncIntervalMs');
  positive('streamRateLimitBytesPerSec', 0);
  positive('streamPageRecords');
  positive('transferConcurrency');
  if (config.partitionBits > bucketBits) {
    throw new ClusterError('BAD_CONFIG', `partitionBits ${config.partitionBits} exceeds the store's bucketBits ${bucketBits}`);
  }
  if (config.tombstoneGraceMs < config.hintWindowMs) {
    // A hint older than a purged tombstone could otherwise bring the deleted value back.
    throw new ClusterError('BAD_CONFIG', 'tombstoneGraceMs must be at least hintWindowMs');
  }
}

/** Builds one cluster node over a store: coordinator, internode API, hinted handoff and background repair. */
export function createClusterNode(options: ClusterNodeOptions): ClusterNode {
  const config: ClusterConfig = { ...DEFAULT_CLUSTER_CONFIG, ...options.config };
  validateClusterConfig(config, options.store.bucketBits);
  if (options.membership.selfId !== options.store.nodeId) {
    throw new ClusterError('BAD_CONFIG', `membership self ${options.membership.selfId} is not the store's node ${options.store.nodeId}`);
  }
  const clock = options.clock ?? backgroundClock;
  const onError = options.onError ?? (() => undefined);
  const { store, membership } = options;
  const hints = new HintStore(options.hintsDb, { maxHintsPerTarget: config.maxHintsPerTarget });
  const storeHealth = new StoreWriteHealth(clock);
  const batchBytes = batchBytesOf(config.internodeMaxBodyBytes);
  const clusterKey = toClusterKeys(options.clusterKey);

  /** The clients made by the default factory, by member id, for the queue metrics. */
  const clients = new Map<string, InternodePeerClient>();
  const peerFactory = options.peerFactory ?? cachedPeerFactory((m) => {
    const transport =
      options.transportFactory?.(m) ??
      createHttpTransport({
        baseUrl: m.http,
        clock,
        targetId: m.id,
        maxResponseBytes: config.internodeMaxBodyBytes,
        ...(clusterKey === undefined ? {} : { clusterKey }),
        ...(options.tls === undefined ? {} : { tls: options.tls }),
      });
    const client = new InternodePeerClient(transport, {
      clock,
      timeoutMs: config.peerTimeoutMs,
      maxInFlight: config.peerMaxInFlight,
      maxQueued: config.peerMaxQueued,
      maxBatchRecords: config.peerMaxBatchRecords,
      maxBatchBytes: batchBytes,
      maxQueuedBytes: config.peerMaxQueuedBytes,
      // A write that would wait longer than this for a slow peer is better refused (BUSY) than timed out.
      maxQueueDelayMs: config.requestTimeoutMs / 2,
      batchDelayMs: config.peerBatchDelayMs,
      maxReadsInFlight: config.peerMaxReadsInFlight,
    });
    clients.set(m.id, client);
    return client;
  });
  const stats = new InternodeStats();
  const peerMetrics = (): string => {
    const peers = [...clients].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `${[
      ...metricFamily(
        'hearsay_cluster_peer_queued_bytes',
        'gauge',
        'Bytes of writes queued or in flight to each peer.',
        peers.map(([id, c]) => [`peer=${JSON.stringify(id)}`, c.queuedBytes] as const),
      ),
      ...metricFamily('hearsay_cluster_peer_queued_bytes_max', 'gauge', 'The cap on bytes of writes queued per peer.', [['', config.peerMaxQueuedBytes]]),
      ...metricFamily(
        'hearsay_cluster_peer_writes_refused_total',
        'counter',
        'Writes to a peer refused at once because its queue was at the cap (kept as hints, or the client got 503 BUSY).',
        peers.map(([id, c]) => [`peer=${JSON.stringify(id)}`, c.writesRefused] as const),
      ),
    ].join('\n')}\n${internodeMetrics(stats)}`;
  };

  const clockFence = new ClockFence({
    membership,
    store,
    ...(options.clockOffsets === undefined ? {} : { offsets: options.clockOffsets }),
    monotonicMs: options.monotonicMs ?? (() => performance.now()),
    clock,
    ...(options.onClockChange === undefined ? {} : { onChange: options.onClockChange }),
    ...(options.onClockJump === undefined ? {} : { onJump: options.onClockJump }),
  });
  const repairRange =
    options.repairRange ??
    createRepairRange(store, clock, {
      ...(config.repairRateLimitBytesPerSec > 0 ? { rateLimitBytesPerSec: config.repairRateLimitBytesPerSec } : {}),
      ...(options.repairSalt === undefined ? {} : { salt: options.repairSalt }),
    });
  const t = options.topology;
  const topology: Topology | undefined =
    t === undefined
      ? undefined
      : new Topology({
          store,
          membership,
          peers: peerFactory,
          clock,
          persistence: t.persistence,
          repairRange,
          seeds: t.seeds,
          config: {
            partitionBits: config.partitionBits,
            replicationFactor: config.replicationFactor,
            ringSyncIntervalMs: config.ringSyncIntervalMs,
            streamRateLimitBytesPerSec: config.streamRateLimitBytesPerSec,
            streamPageRecords: config.streamPageRecords,
            transferConcurrency: config.transferConcurrency,
          },
          onError,
          cleanup: (signal) => antiEntropy.handOffForeign(signal),
          ...(t.replace === undefined ? {} : { replace: t.replace }),
          ...(t.gossipAddress === undefined ? {} : { gossipAddress: t.gossipAddress }),
          ...(t.onEvent === undefined ? {} : { onEvent: t.onEvent }),
          ...(t.onExit === undefined ? {} : { onExit: t.onExit }),
        });

  const coordinator: Coordinator = new Coordinator({
    store,
    membership,
    peers: peerFactory,
    hints,
    clock,
    clockFence,
    onError,
    storeHealth,
    extraMetrics: peerMetrics,
    ...(topology === undefined
      ? {}
      : {
          ownership: topology,
          admin: (request) => (request.type === 'decommission' ? topology.decommission({ abort: request.abort }) : topology.remove(request.node)),
        }),
    config: {
      replicationFactor: config.replicationFactor,
      partitionBits: config.partitionBits,
      requestTimeoutMs: config.requestTimeoutMs,
      hintsCountTowardConsistency: config.hintsCountTowardConsistency,
      readRepair: config.readRepair,
    },
    repair: (o) => antiEntropy.runAll(o),
  });
  const antiEntropy: AntiEntropy = new AntiEntropy({
    store,
    membership,
    peers: peerFactory,
    clock,
    partitionMap: () => coordinator.partitionMap,
    placement: () => coordinator.placement,
    ...(topology === undefined ? {} : { mayDrop: (p: number) => topology.mayDrop(p) }),
    repairRange,
    onError,
    config: { partitionIntervalMs: config.repairPartitionIntervalMs, tombstoneGraceMs: config.tombstoneGraceMs },
  });
  const handoff = new HintedHandoff({
    hints,
    store,
    membership,
    peers: peerFactory,
    clock,
    onError,
    config: { intervalMs: config.handoffIntervalMs, windowMs: config.hintWindowMs },
  });
  const handleInternode = createInternodeHandler({
    store,
    hints,
    clock,
    repair: options.repairResponder ?? createRepairResponder(store, clock),
    tombstoneGraceMs: config.tombstoneGraceMs,
    maxAnswerBytes: batchBytes,
    storeHealth,
    ...(topology === undefined ? {} : { topology }),
  });
  const internalApp = createInternodeApp({
    handle: handleInternode,
    clock,
    selfId: store.nodeId,
    maxBodyBytes: config.internodeMaxBodyBytes,
    maxNonces: config.maxNonces,
    stats,
    ...(clusterKey === undefined ? {} : { clusterKey }),
    ...(options.load === undefined ? {} : { load: options.load }),
    onError: (e) => onError('internode request', e),
  });

  let started = false;
  return {
    nodeId: store.nodeId,
    service: coordinator,
    internalApp,
    handleInternode,
    hints,
    handoff,
    antiEntropy,
    topology,
    clockFence,
    config,
    async start() {
      if (started) return;
      started = true;
      await hints.open();
      await topology?.start();
      handoff.start();
      antiEntropy.start();
      clockFence.start();
    },
    async stop() {
      clockFence.stop();
      await Promise.all([handoff.stop(), antiEntropy.stop(), topology?.stop()]);
      await coordinator.stop();
    },
  };
}

/** Reuses one client per (member id, address); a member that moved gets a fresh one. */
export function cachedPeerFactory(make: (member: MemberInfo) => PeerClient): PeerFactory {
  const cache = new Map<string, PeerClient>();
  return (member) => {
    const k = `${member.id}\u0000${member.http}`;
    let c = cache.get(k);
    if (c === undefined) {
      for (const key of cache.keys()) if (key.startsWith(member.id + '\u0000')) cache.delete(key);
      c = make(member);
      cache.set(k, c);
    }
    return c;
  };
}
