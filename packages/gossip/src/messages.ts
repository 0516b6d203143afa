// Gossip protocol messages: plain data only (strings, finite numbers, booleans,
// arrays, plain objects) so msgpackr carries them unchanged and the wire
// decoder (codec.ts) can validate each one from `unknown`.
//
// Identity: a member is named by `id` (stable across restarts) and reached at
// `address` (opaque 'host:port' the runtime understands). `generation` rises on
// every restart of a member (the runtime persists it); `incarnation` rises
// within a generation when the member refutes a suspicion. Liveness facts are
// ordered by (generation, incarnation); member state entries by
// (generation, version).

/**
 * Message type numbers. WIRE CONSTANTS: they are part of the protocol.
 * APPEND-ONLY — never renumber or reuse a value; add new types at the end.
 */
export const MessageType = {
  Ping: 1,
  PingReq: 2,
  Ack: 3,
  Nack: 4,
  Suspect: 5,
  Alive: 6,
  Dead: 7,
  Left: 8,
  StateUpdate: 9,
  Heartbeat: 10,
  PullReq: 11,
  // Stream (push-pull anti-entropy) messages.
  Syn: 12,
  SynAck: 13,
  SynAck2: 14,
  // Added after wire version 1 shipped: an older member drops it as unknown-type.
  UserEvent: 15,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Liveness status of a member as seen by one node. */
export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

/** Direct probe. The receiver answers `Ack` with the same `seqNo` to `sourceAddr`. */
export interface Ping {
  type: typeof MessageType.Ping;
  seqNo: number;
  /** id the prober believes lives at the address; a receiver with another id ignores it. */
  target: string;
  source: string;
  sourceAddr: string;
}

/** Ask the receiver to probe `target` on the sender's behalf (SWIM indirect probe). */
export interface PingReq {
  type: typeof MessageType.PingReq;
  seqNo: number;
  target: string;
  targetAddr: string;
  source: string;
  sourceAddr: string;
  /** Lifeguard: when true the relay answers `Nack` if the target does not ack in time. */
  nack: boolean;
}

export interface Ack {
  type: typeof MessageType.Ack;
  seqNo: number;
  /** id of the member that answered (the probed target). */
  source: string;
  /**
   * The target's wall clock (ms since the epoch, may be fractional) when it
   * answered, for clock offset estimates (clock-offset.ts). Optional, added
   * after wire version 1 shipped: members without a wall clock, or older
   * ones, leave it out; a relay passes it on unchanged.
   */
  wallMs?: number;
}

/** Lifeguard: the relay of a PingReq could not reach the target; proves the relay itself is alive. */
export interface Nack {
  type: typeof MessageType.Nack;
  seqNo: number;
  source: string;
}

/** `from` suspects member `id` at (generation, incarnation). */
export interface Suspect {
  type: typeof MessageType.Suspect;
  id: string;
  generation: number;
  incarnation: number;
  from: string;
}

/** Member `id` is alive at (generation, incarnation), reachable at `address`. */
export interface Alive {
  type: typeof MessageType.Alive;
  id: string;
  address: string;
  generation: number;
  incarnation: number;
}

/** `from` declares member `id` dead at (generation, incarnation). */
export interface Dead {
  type: typeof MessageType.Dead;
  id: string;
  generation: number;
  incarnation: number;
  from: string;
}

/** Member `id` left the cluster gracefully at (generation, incarnation). */
export interface Left {
  type: typeof MessageType.Left;
  id: string;
  generation: number;
  incarnation: number;
}

/** One versioned application state entry of a member. */
export interface StateEntry {
  key: string;
  value: string;
  /** Rises within a generation across all keys of one member. */
  version: number;
}

/**
 * Application state of member `id` in `generation`: every change above
 * version `base`, as the latest entry of each key changed since then. A
 * receiver that holds everything up to `base` holds everything up to the
 * highest entry version once it merges them; one that does not merges the
 * values but keeps its version, so its next push-pull digest asks for the gap.
 */
export interface StateUpdate {
  type: typeof MessageType.StateUpdate;
  id: string;
  generation: number;
  base: number;
  entries: StateEntry[];
}

/** Phi-accrual mode: member `id`'s heartbeat counter in `generation`. */
export interface Heartbeat {
  type: typeof MessageType.Heartbeat;
  id: string;
  generation: number;
  counter: number;
}

/**
 * Pull-mode gossip: ask the receiver to send its current rumors (its broadcast
 * queue) back to `sourceAddr`.
 */
export interface PullReq {
  type: typeof MessageType.PullReq;
  source: string;
  sourceAddr: string;
}

/**
 * A user event (user-events.ts): a small payload broadcast by `origin` to
 * every member, named by (origin, generation, seq); seq rises by one per event
 * within the origin's generation. Travels as a rumor, and in push-pull
 * exchanges (`SynAck.events`, `SynAck2.events`) to members the rumor missed.
 */
export interface UserEvent {
  type: typeof MessageType.UserEvent;
  origin: string;
  generation: number;
  seq: number;
  name: string;
  payload: Uint8Array;
}

/** Packet (datagram) messages. A datagram carries one or more of these. */
export type PacketMessage =
  | Ping
  | PingReq
  | Ack
  | Nack
  | Suspect
  | Alive
  | Dead
  | Left
  | StateUpdate
  | Heartbeat
  | PullReq
  | UserEvent;

/** Per-member summary exchanged first in anti-entropy (Cassandra's GossipDigest). */
export interface Digest {
  id: string;
  generation: number;
  incarnation: number;
  status: MemberStatus;
  /** Highest state version known for this member in `generation` (0 when none). */
  version: number;
  /** Heartbeat counter (0 in SWIM mode). */
  heartbeat: number;
  /**
   * User events of this member (as origin) in `generation` delivered without
   * a gap, up to this seq. Optional, added after wire version 1: absent from
   * older members, read as 0.
   */
  events?: number;
}

/** Full knowledge of one member: liveness plus the state entries above a version. */
export interface MemberRecord {
  id: string;
  address: string;
  generation: number;
  incarnation: number;
  status: MemberStatus;
  heartbeat: number;
  /**
   * The sender holds every state entry of `generation` up to this version
   * (its digest version); `entries` are all it holds above the version the
   * receiver asked from (all of them when the receiver asked for none).
   */
  version: number;
  entries: StateEntry[];
  /**
   * The sender's delivered-up-to seq of this member's user events (see
   * `Digest.events`); a joining member starts from it, so events from before
   * it joined are not delivered to it. Optional (added after wire version 1).
   */
  events?: number;
}

/** Push-pull step 1 (initiator → peer): my digests. `join` marks a joining node. */
export interface Syn {
  type: typeof MessageType.Syn;
  source: string;
  sourceAddr: string;
  join: boolean;
  digests: Digest[];
}

/** Push-pull step 2 (peer → initiator): records the initiator lacks, digests of what the peer wants. */
export interface SynAck {
  type: typeof MessageType.SynAck;
  source: string;
  records: MemberRecord[];
  /** Members whose records the peer wants, with the version the peer already has. */
  requests: Digest[];
  /** Buffered user events above what the initiator's digests said it delivered. Optional (added after wire version 1). */
  events?: UserEvent[];
}

/** Push-pull step 3 (initiator → peer): the records the peer asked for. No reply. */
export interface SynAck2 {
  type: typeof MessageType.SynAck2;
  source: string;
  records: MemberRecord[];
  /** Buffered user events above what the peer's requests said it delivered. Optional (added after wire version 1). */
  events?: UserEvent[];
}

/** Stream (TCP) messages: one push-pull exchange is Syn → SynAck → SynAck2. */
export type StreamMessage = Syn | SynAck | SynAck2;

export type Message = PacketMessage | StreamMessage;

export const MEMBER_STATUSES: readonly MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];

/** True for the message types that travel in datagrams. */
export function isPacketMessage(m: Message): m is PacketMessage {
  return m.type <= MessageType.PullReq || m.type === MessageType.UserEvent;
}

/** True for the message types that travel on streams. */
export function isStreamMessage(m: Message): m is StreamMessage {
  return m.type >= MessageType.Syn && m.type <= MessageType.SynAck2;
}
