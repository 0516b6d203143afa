export { runRepairSession } from './driver.ts';
export type { RunRepairSessionOptions } from './driver.ts';
export { addRepairStats, emptyRepairStats, repairRange, DEFAULT_REPAIR_LIMITS } from './session.ts';
export type {
  RepairLimits, RepairPeer, RepairResult, RepairSessionInput, RepairStats, SessionProgress,
} from './session.ts';
export { createRepairResponder, handleRepairRequest } from './responder.ts';
export type { RepairResponder, RepairResponderOptions } from './responder.ts';
export { createMemoryPeer } from './memory-transport.ts';
export type { MemoryPeerOptions } from './memory-transport.ts';
export { RepairError, isRepairError } from './errors.ts';
export type { RepairErrorCode } from './errors.ts';
export { partitionBucketRange, rangeDepth } from './range.ts';
export type { BucketRange } from './range.ts';
export { FIELD_ORDER, MessageType, PROTOCOL_VERSION, decodeReply, decodeRequest, encodeMessage } from './messages.ts';
export type { RepairMessage, RepairReply, RepairRequest } from './messages.ts';
export { TokenBucket } from './token-bucket.ts';
