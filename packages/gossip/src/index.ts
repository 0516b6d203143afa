// @hearsay/gossip public API. The pure protocol core (GossipNode) and its
// message types; the wire codec, transports and runtime are exported below
// by the files that define them.

export { GossipNode, pushPullIntervalScaledMs } from './node.ts';
export type { GossipEvent, GossipEventType, GossipStats, MemberView, StreamRequest, Transmit } from './node.ts';
export { DEFAULT_TUNING, resolveTuning } from './config.ts';
export type { DetectorKind, DisseminationMode, GossipConfig, GossipTuning } from './config.ts';
export { GossipError } from './errors.ts';
export type { GossipErrorCode } from './errors.ts';
export { MessageType, MEMBER_STATUSES, isPacketMessage, isStreamMessage } from './messages.ts';
export type * from './messages.ts';
export { estimateSize, MESSAGE_OVERHEAD_BYTES } from './size.ts';
export { Suspicion, remainingSuspicionMs, suspicionTimeoutMs } from './suspicion.ts';
export { Awareness } from './awareness.ts';
export { BroadcastQueue, retransmitLimit } from './broadcast-queue.ts';
export { ArrivalWindow } from './phi-accrual.ts';
