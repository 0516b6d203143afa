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
export { ClockWindow, clockSample, CLOCK_READING_RESOLUTION_MS } from './clock-offset.ts';
export type { ClockOffset, ClockSample } from './clock-offset.ts';
export { UserEventLog } from './user-events.ts';
export type { UserEventView } from './user-events.ts';

// Wire, transports and runtime (codec.ts, keyring.ts, transport.ts, net-transport.ts, runtime.ts).
// The simulated transport and the simulation harness are in `@hearsay/gossip/testing` (src/testing/).
export { startGossip, GossipRuntime, GossipRuntimeError, realClock } from './runtime.ts';
export type { GossipRuntimeOptions, GossipRuntimeStats, GossipRuntimeEvent, GossipListener, GossipLogger, RuntimeClock, GossipRuntimeErrorCode } from './runtime.ts';
export { fileGenerationStore, memoryGenerationStore, nextGeneration, GenerationStoreError } from './generation-store.ts';
export type { GenerationStore, GenerationStoreErrorCode } from './generation-store.ts';
export { Keyring, KeyringError, deriveKey, generateKey, keyIdOf, KEY_BYTES } from './keyring.ts';
export type { KeyInput, KeyringErrorCode } from './keyring.ts';
export { Codec, CodecError, DROP_REASONS, DEFAULT_MAX_PACKET_BYTES, DEFAULT_MAX_FRAME_BYTES, emptyDropCounters } from './codec.ts';
export type { CodecOptions, CodecErrorCode, DecodeResult, DropCounters, DropReason, EncryptionPolicy, MessageParser, PackResult, ParseResult } from './codec.ts';
export { parseMessage } from './message-parser.ts';
export { TransportError, parseAddress, formatAddress, emptyTransportStats } from './transport.ts';
export type { Address, PacketHandler, StreamHandler, Transport, TransportErrorCode, TransportStats } from './transport.ts';
export { createNetTransport, NetTransport } from './net-transport.ts';
export type { NetTransportOptions } from './net-transport.ts';
