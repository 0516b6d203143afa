export {
  computePartitionMap,
  partitionOfHash,
  bucketRangeOf,
  countMovedReplicas,
  hrwScore,
  DEFAULT_PARTITION_BITS,
  MAX_PARTITION_BITS,
  type PartitionMap,
  type PartitionMapOptions,
  type BucketRange,
} from './partition-map.ts';
export { requiredReplicas } from './quorum.ts';
export { Coordinator, type CoordinatorDeps } from './coordinator.ts';
export { DEFAULT_COORDINATOR_CONFIG, type CoordinatorConfig, type CoordinatorCounters } from './coordinator-context.ts';
export { StaticMembership, ringMembers, isReachable, type MemberInfo, type MembershipView } from './membership.ts';
export type { PeerClient, PeerFactory, ReplicaOutcome, ScanRequest, ScanResponse } from './peer.ts';
export {
  ClockFence,
  type ClockFenceOptions,
  type ClockOffset,
  type ClockOffsetSource,
  type ClockState,
  type ClockVerdict,
  type MemberClock,
} from './clock-fence.ts';
export { awaitWriteAcks, type WriteWait } from './write-acks.ts';
export { MAX_RESTAMPS } from './replica-write.ts';
export {
  chunksOf,
  DEFAULT_MAX_BATCH_BYTES,
  DEFAULT_MAX_QUEUED_BYTES,
  InternodePeerClient,
  recordBytes,
  type InternodeTransport,
  type PeerClientOptions,
} from './peer-client.ts';
export { createHttpTransport, type HttpTransportOptions, type InternodeTls } from './http-transport.ts';
export { ClusterKeys, toClusterKeys, type ClusterKeyInput } from './cluster-keys.ts';
export {
  batchBytesOf,
  createInternodeApp,
  DEFAULT_MAX_INTERNODE_BODY_BYTES,
  INTERNODE_REFUSALS,
  InternodeStats,
  internodeMetrics,
  internodePackr,
  MIN_INTERNODE_BODY_BYTES,
  MSGPACK_CONTENT_TYPE,
  type InternodeAppOptions,
  type InternodeRefusal,
} from './internode-app.ts';
export { createInternodeHandler, type RepairResponder } from './internode-handler.ts';
export { decodeRequest, INTERNODE_TYPES, type InternodeRequest, type InternodeType } from './internode-messages.ts';
export {
  authHeaders,
  checkHeaders,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DIGEST_HEADER,
  isAuthFailure,
  NONCE_HEADER,
  sha256Hex,
  SIGNATURE_HEADER,
  signRequest,
  TIMESTAMP_HEADER,
  type AuthFailure,
  type AuthFailureCode,
  type Authenticated,
  type SignedRequest,
} from './auth.ts';
export { DEFAULT_MAX_NONCES, NonceCache, type NonceVerdict } from './nonce-cache.ts';
export { StoreWriteHealth, STORE_FAILURE_WINDOW_MS } from './store-health.ts';
export { HintStore, hintsSublevel, type Hint, type HintsDb, type SublevelParent, type HintStoreStats } from './hint-store.ts';
export { HintedHandoff, DEFAULT_HANDOFF_CONFIG, type HandoffConfig } from './handoff.ts';
export {
  AntiEntropy,
  DEFAULT_ANTI_ENTROPY_CONFIG,
  type AntiEntropyConfig,
  type RangeRepairRequest,
  type RepairRange,
  type PartitionRepairOutcome,
} from './anti-entropy.ts';
export { purgeCutoffMs, type PurgeCutoffInput } from './tombstone-purge.ts';
export { createRepairRange, createRepairResponder } from './repair-adapter.ts';
export {
  createClusterNode,
  cachedPeerFactory,
  validateClusterConfig,
  DEFAULT_CLUSTER_CONFIG,
  type ClusterConfig,
  type ClusterNode,
  type ClusterNodeOptions,
} from './cluster-node.ts';
export { ClusterError, type ClusterErrorCode } from './errors.ts';
export {
  connectGossip,
  GOSSIP_STATE_HTTP,
  GOSSIP_STATE_KEYS,
  GOSSIP_STATE_STATUS,
  type ConnectGossipOptions,
  type GossipLike,
  type GossipMembership,
} from './gossip-membership.ts';
export type { PurgeRequest } from './peer.ts';
export { startClusterService, type ClusterService, type ClusterServiceOptions } from './cluster-service.ts';
export { ForeignHandoff, type ForeignHandoffResult } from './foreign-handoff.ts';

export {
  RING_STATUSES,
  EMPTY_RING,
  compareEntries as compareRingEntries,
  mergeRings,
  withEntry,
  nextEntry,
  ringVersion,
  ringHash,
  ringEntries,
  encodeRing,
  decodeRing,
  type Ring,
  type RingEntry,
  type RingStatus,
} from './ring.ts';
export {
  derivePlacement,
  stablePlacement,
  changeOrder,
  covered,
  gateMissing,
  type Placement,
  type PlacementOptions,
  type ReplicaSets,
  type PartitionTransfer,
  type ActiveChange,
  type ChangeKind,
} from './placement.ts';
export { awaitJoint, type QuorumSet, type MemberAttempt, type JointOutcome } from './joint-quorum.ts';
export { staticOwnership, type Ownership, type StaticOwnershipOptions } from './ownership.ts';
export {
  Topology,
  DEFAULT_TOPOLOGY_CONFIG,
  type TopologyConfig,
  type TopologyDeps,
  type TopologyEvent,
  type TopologyExit,
  type TopologyExitCode,
  type TransferView,
} from './topology.ts';
export {
  fileTopologyPersistence,
  memoryTopologyPersistence,
  encodeTopologyState,
  decodeTopologyState,
  type TopologyPersistence,
  type TopologyState,
} from './topology-store.ts';
export { readStreamPage, decodeStreamPage, type StreamRequest, type StreamPage } from './stream.ts';
export { fillPartition, StreamLimiter, type FillDeps, type FillRequest, type FillResult } from './transfer.ts';
export { GOSSIP_STATE_RING, GOSSIP_STATE_XFER } from './gossip-membership.ts';
export type { ClusterTopologyOptions } from './cluster-node.ts';
export type { InternodeTopology } from './internode-handler.ts';
