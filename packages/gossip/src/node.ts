// GossipNode: the pure SWIM + Lifeguard protocol core, shaped like quinn-proto.
//
// THE RUNTIME DRIVES IT (runtime.ts over UDP/TCP with real timers, or the
// simulation harness over @hearsay/sim). The core never touches sockets,
// timers, Date.now or Math.random: every input carries `nowMs`, randomness
// comes from `config.random`. After any input the runtime drains the outputs:
//   pollTransmit()  packets to send (each: one address, messages to pack into one datagram)
//   pollStream()    push-pull exchanges to open. One exchange is Syn → SynAck → SynAck2:
//                   send `msg` (Syn) as a stream request to `to`; the peer's runtime hands it
//                   to its handleStream, which returns the SynAck to respond with. Hand the
//                   SynAck to our handleStream(to, ...); if it returns a SynAck2, send that as
//                   a second request to the same address (the peer's handleStream returns
//                   undefined for it: respond with an empty frame / ignore the response).
//                   If a request fails, call handleStreamError(to, nowMs).
//   pollEvents()    membership events
//   nextDeadline()  when to call tick(nowMs) next (undefined: nothing scheduled)
// Messages handed in are never mutated by the core; messages handed out are
// not touched again by the core after polling.

import { Awareness } from './awareness.ts';
import { clockSample, ClockWindow } from './clock-offset.ts';
import type { ClockOffset } from './clock-offset.ts';
import { BroadcastQueue, retransmitLimit } from './broadcast-queue.ts';
import { resolveTuning, tuningProblem } from './config.ts';
import type { GossipConfig, GossipTuning } from './config.ts';
import { GossipError } from './errors.ts';
import {
  advanceStateVersion,
  compareIncarnation,
  compareLiveness,
  digestOf,
  EMPTY_STATE,
  isDigestNewer,
  isNewerThanDigest,
  mergeEntries,
  newMember,
  recordOf,
  topVersion,
  writableState,
} from './member-state.ts';
import type { Member } from './member-state.ts';
import { MessageType } from './messages.ts';
import type {
  Ack,
  Alive,
  Dead,
  Digest,
  Heartbeat,
  Left,
  MemberRecord,
  MemberStatus,
  Nack,
  PacketMessage,
  Ping,
  PingReq,
  PullReq,
  StateEntry,
  StateUpdate,
  StreamMessage,
  Suspect,
  Syn,
  SynAck,
  SynAck2,
  UserEvent,
} from './messages.ts';
import { ArrivalWindow } from './phi-accrual.ts';
import { pickRandom, ProbeOrder } from './probe.ts';
import { estimateSize, MESSAGE_OVERHEAD_BYTES } from './size.ts';
import { Suspicion, suspicionTimeoutMs } from './suspicion.ts';
import { keyOf, UserEventLog } from './user-events.ts';
import type { UserEventView } from './user-events.ts';

/** One outgoing datagram: its messages must be packed together (they fit the packet budget). */
export interface Transmit {
  to: string;
  msgs: PacketMessage[];
}

/** A push-pull exchange to open: connect to `to` and send `msg`. */
export interface StreamRequest {
  to: string;
  msg: Syn;
}

/** A member as one node sees it. */
export interface MemberView {
  id: string;
  address: string;
  status: MemberStatus;
  generation: number;
  incarnation: number;
  /** Application state: key → value. */
  state: Readonly<Record<string, string>>;
  /** Highest state version in `generation`. */
  stateVersion: number;
}

export type GossipEventType = 'join' | 'update' | 'suspect' | 'alive' | 'dead' | 'left';

export interface GossipEvent {
  type: GossipEventType;
  member: MemberView;
  atMs: number;
  /** For 'update': the keys whose values changed. */
  keys?: string[];
}

/** Counters for metrics and tests. */
export interface GossipStats {
  packetsSent: number;
  messagesSent: number;
  messagesReceived: number;
  streamsOpened: number;
  /** Streams we opened that failed (reported by the runtime through handleStreamError). */
  streamsFailed: number;
  probes: number;
  indirectProbes: number;
  suspicionsRaised: number;
  refutations: number;
  /** Clock offset samples taken from probe round trips (see clockOffsets). */
  clockSamples: number;
  /** Samples that contradicted an older one of the same member, which was retired (a clock step). */
  clockSamplesContradicted: number;
  /** User events this member broadcast. */
  userEventsSent: number;
  /** User events delivered here (own included), each once. */
  userEventsDelivered: number;
  /** User event copies that arrived again (rumor and push-pull both carry them). */
  userEventsDuplicate: number;
  /** broadcastEvent calls refused: queue full (GOSSIP_EVENT_QUEUE_FULL) or too large. */
  userEventsRefused: number;
  /** Inputs dropped inside the core (unknown sender, over a bound, stale). */
  dropped: number;
  /** Outputs dropped because an outbox was full (the runtime was not draining). */
  outboxOverflow: number;
}

interface ActiveProbe {
  seqNo: number;
  target: Member;
  /**
   * The life of the target this probe is about. `target` is updated in place
   * when the member refutes or restarts, so a failure may only accuse the
   * (generation, incarnation) the probe started with.
   */
  generation: number;
  incarnation: number;
  /** Our wall clock when the ping left (undefined without a wall clock). */
  sentWallMs: number | undefined;
  indirectAtMs: number;
  failAtMs: number;
  indirectSent: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  origSeqNo: number;
  replyTo: string;
  nack: boolean;
  deadlineMs: number;
}

/** memberlist pushPullScale: above 32 members the push-pull period grows with log2(N). */
export function pushPullIntervalScaledMs(intervalMs: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return intervalMs;
  return (Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1) * intervalMs;
}

const JOIN_SEEDS_MAX = 3;

export class GossipNode {
  readonly id: string;
  readonly address: string;
  readonly generation: number;
  readonly tuning: Readonly<GossipTuning>;
  private readonly seeds: string[];
  private readonly random: () => number;
  private readonly wallClock: (() => number) | undefined;

  private readonly self: Member;
  private readonly membersById = new Map<string, Member>();
  /** Same members as an array, for random picks without copying. */
  private memberArr: Member[] = [];
  /** Members alive or suspect, self included: the N of the formulas. */
  private liveCount = 1;
  private readonly suspected = new Set<Member>();

  private readonly queue: BroadcastQueue;
  readonly awareness: Awareness;
  private readonly probeOrder: ProbeOrder;
  private probe: ActiveProbe | undefined;
  private readonly relays = new Map<number, Relay>();
  private seqNo = 0;
  private localVersion = 0;

  private started = false;
  private leaving = false;
  private joined = true;
  private joinAttempt = 0;
  private joinRetryAtMs = Infinity;
  private nextProbeAtMs = Infinity;
  private nextGossipAtMs = Infinity;
  private nextPushPullAtMs = Infinity;
  private nextReconnectAtMs = Infinity;
  private nextHeartbeatAtMs = Infinity;
  private joinPushPullAtMs = Infinity;
  /** Seeds of the current join attempt whose stream has neither answered nor failed. */
  private readonly joinStreamsOpen = new Set<string>();
  private joinPushPullTo: string | undefined;
  /** The address of the join follow-up push-pull whose SynAck is still due (see `handleSynAck`). */
  private joinFollowUpFrom: string | undefined;

  private transmits: Transmit[] = [];
  private streams: StreamRequest[] = [];
  private events: GossipEvent[] = [];
  private listener: ((e: GossipEvent) => void) | undefined;
  private readonly userEvents: UserEventLog;
  private userEventSeq = 0;
  /** Keys of our own events, oldest first, while they may still be in the rumor queue. */
  private ownEventKeys: string[] = [];
  private userEventOut: UserEventView[] = [];
  private userEventListener: ((e: UserEventView) => void) | undefined;

  readonly stats: GossipStats = {
    packetsSent: 0,
    messagesSent: 0,
    messagesReceived: 0,
    streamsOpened: 0,
    streamsFailed: 0,
    probes: 0,
    indirectProbes: 0,
    suspicionsRaised: 0,
    refutations: 0,
    clockSamples: 0,
    clockSamplesContradicted: 0,
    userEventsSent: 0,
    userEventsDelivered: 0,
    userEventsDuplicate: 0,
    userEventsRefused: 0,
    dropped: 0,
    outboxOverflow: 0,
  };

  constructor(config: GossipConfig) {
    if (!config.id || !config.address) throw new GossipError('GOSSIP_CONFIG_INVALID', 'id and address are required');
    if (!Number.isSafeInteger(config.generation) || config.generation < 0) {
      throw new GossipError('GOSSIP_CONFIG_INVALID', 'generation must be a non-negative safe integer');
    }
    this.tuning = Object.freeze(resolveTuning(config));
    const t = this.tuning;
    if (!(t.probeTimeoutMs > 0 && t.probeIntervalMs >= t.probeTimeoutMs && t.gossipIntervalMs > 0)) {
      throw new GossipError('GOSSIP_CONFIG_INVALID', 'need 0 < probeTimeoutMs <= probeIntervalMs and gossipIntervalMs > 0');
    }
    const problem = tuningProblem(t);
    if (problem !== undefined) throw new GossipError('GOSSIP_CONFIG_INVALID', problem);
    this.id = config.id;
    this.address = config.address;
    this.generation = config.generation;
    this.random = config.random;
    this.wallClock = config.wallClock;
    this.seeds = [...new Set(config.seeds ?? [])].filter((s) => s !== config.address);
    this.queue = new BroadcastQueue(t.broadcastQueueMax);
    this.awareness = new Awareness(t.awarenessMaxMultiplier);
    this.probeOrder = new ProbeOrder(this.random);
    this.userEvents = new UserEventLog(t.userEventBufferMax, t.membersMax);
    this.self = newMember(this.id, this.address, this.generation, 0, 0);
    this.addMember(this.self);
    for (const [k, v] of Object.entries(config.state ?? {})) this.setLocalState(k, v);
  }

  // ---- inputs -------------------------------------------------------------

  /** Begin: schedule timers, announce ourselves, join through the seeds. */
  start(nowMs: number): void {
    if (this.started) return;
    this.started = true;
    const t = this.tuning;
    this.self.statusChangedAtMs = nowMs;
    // Random phases so a cluster started at once does not probe in lockstep.
    this.nextProbeAtMs = nowMs + Math.floor(this.random() * t.probeIntervalMs);
    this.nextGossipAtMs = nowMs + Math.floor(this.random() * t.gossipIntervalMs);
    this.nextPushPullAtMs = nowMs + Math.floor((0.5 + this.random()) * t.pushPullIntervalMs);
    this.nextReconnectAtMs = nowMs + Math.floor((0.5 + this.random()) * t.reconnectIntervalMs);
    if (t.detector === 'phi') this.nextHeartbeatAtMs = nowMs;
    this.queue.push(`m:${this.id}`, this.aliveMsgOfSelf(), t.joinRetransmitMult);
    if (this.self.state.size > 0) this.queueStateUpdate(this.self, 0, [...this.self.state.values()]);
    const pending: UserEvent[] = [];
    this.userEvents.eventsAbove(this.id, this.generation, 0, this.tuning.userEventQueueMax, pending);
    for (const e of pending) this.queue.push(`e:${keyOf(e)}`, e);
    if (this.seeds.length > 0) {
      this.joined = false;
      this.sendJoin(nowMs);
    }
  }

  /** Messages of one datagram received from address `from`. */
  handlePacket(from: string, msgs: readonly PacketMessage[], nowMs: number): void {
    if (!this.started) return;
    for (const msg of msgs) {
      this.stats.messagesReceived++;
      this.handleMessage(from, msg, nowMs);
    }
  }

  /**
   * One stream message from `from`. Returns the reply to write on the same
   * stream, or undefined when the exchange is over (close the stream).
   */
  handleStream(from: string, msg: StreamMessage, nowMs: number): StreamMessage | undefined {
    if (!this.started) return undefined;
    this.stats.messagesReceived++;
    switch (msg.type) {
      case MessageType.Syn:
        return this.handleSyn(msg, nowMs);
      case MessageType.SynAck:
        return this.handleSynAck(from, msg, nowMs);
      case MessageType.SynAck2:
        this.mergeRecords(msg.records, nowMs);
        this.mergeUserEvents(msg.events, nowMs, true);
        return undefined;
      default: {
        const never: never = msg;
        void never;
        this.stats.dropped++;
        return undefined;
      }
    }
  }

  /**
   * A stream we opened (pollStream) failed: refused, unreachable, timed out or
   * answered with nothing usable. Counted. When it was the last open join
   * stream of this attempt (every seed tried failed), the join is retried
   * after the backoff alone instead of waiting out `streamTimeoutMs` too: a
   * seed that refused the connection (not started yet) is asked again in
   * 1 s, not 6 s.
   */
  handleStreamError(to: string, nowMs: number): void {
    this.stats.streamsFailed++;
    if (this.joined || !this.joinStreamsOpen.delete(to) || this.joinStreamsOpen.size > 0) return;
    this.joinRetryAtMs = Math.min(this.joinRetryAtMs, nowMs + this.joinBackoffMs());
  }

  /** Fire every timer due at `nowMs`. Call at nextDeadline() (late is fine). */
  tick(nowMs: number): void {
    if (!this.started) return;
    const t = this.tuning;

    // SWIM probe: direct timeout → indirect probes; interval end → suspect.
    const p = this.probe;
    if (p !== undefined) {
      if (!p.indirectSent && nowMs >= p.indirectAtMs) this.sendIndirectProbes(p);
      if (nowMs >= p.failAtMs) this.probeFailed(p, nowMs);
    }
    for (const [seq, r] of this.relays) {
      if (nowMs < r.deadlineMs) continue;
      this.relays.delete(seq);
      if (r.nack) this.send(r.replyTo, [{ type: MessageType.Nack, seqNo: r.origSeqNo, source: this.id } satisfies Nack]);
    }
    if (t.detector === 'swim' && !this.leaving && this.probe === undefined && nowMs >= this.nextProbeAtMs) {
      this.startProbe(nowMs);
      this.nextProbeAtMs = nowMs + this.awareness.scaleTimeout(t.probeIntervalMs);
    }

    for (const m of this.suspected) {
      const s = m.suspicion;
      if (s === undefined) continue;
      if (nowMs >= s.deadlineMs) {
        this.handleDead({ type: MessageType.Dead, id: m.id, generation: m.generation, incarnation: m.incarnation, from: this.id }, nowMs);
      } else if (nowMs >= m.suspicionCheckAtMs) {
        // A suspicion still open this long may rest on a refutation we missed
        // (rumors retire after λ·log N sends): ask the suspect itself. If it is
        // alive it answers with its current Alive (see tellAlive).
        m.suspicionCheckAtMs = nowMs + s.minMs / 2;
        this.send(m.address, [{ type: MessageType.Suspect, id: m.id, generation: m.generation, incarnation: m.incarnation, from: this.id } satisfies Suspect]);
      }
    }

    if (t.detector === 'phi' && nowMs >= this.nextHeartbeatAtMs && !this.leaving) {
      this.self.heartbeat++;
      this.queue.push(`h:${this.id}`, { type: MessageType.Heartbeat, id: this.id, generation: this.generation, counter: this.self.heartbeat } satisfies Heartbeat);
      this.nextHeartbeatAtMs = nowMs + t.heartbeatIntervalMs;
    }

    if (nowMs >= this.nextGossipAtMs) {
      this.gossip(nowMs);
      if (t.detector === 'phi') this.checkPhi(nowMs);
      this.nextGossipAtMs = nowMs + t.gossipIntervalMs;
    }
    if (nowMs >= this.nextPushPullAtMs) {
      if (!this.leaving) this.pushPullRandom(nowMs);
      this.nextPushPullAtMs = nowMs + pushPullIntervalScaledMs(t.pushPullIntervalMs, this.liveCount);
    }
    if (nowMs >= this.nextReconnectAtMs) {
      if (!this.leaving) this.reconnect(nowMs);
      this.reap(nowMs);
      this.nextReconnectAtMs = nowMs + t.reconnectIntervalMs;
    }
    if (nowMs >= this.joinPushPullAtMs) {
      // The view we joined with was the peer's at that moment; members that
      // joined since reach us by rumor, and a rumor can miss (it is sent
      // λ·log N times). One push-pull with the same peer closes that gap.
      this.joinPushPullAtMs = Infinity;
      if (this.joinPushPullTo !== undefined && !this.leaving) {
        this.openStream(this.joinPushPullTo, false);
        this.joinFollowUpFrom = this.joinPushPullTo;
      }
    }
    if (!this.joined && nowMs >= this.joinRetryAtMs) {
      this.joinAttempt++;
      this.sendJoin(nowMs);
    }
  }

  /** Publish (or change) one key of our application state. */
  setLocalState(key: string, value: string): void {
    const t = this.tuning;
    if (this.leaving) throw new GossipError('GOSSIP_LEFT', 'this member has left');
    if (key.length === 0 || key.length > t.stateKeyBytesMax) {
      throw new GossipError('GOSSIP_STATE_KEY_TOO_LONG', `state key must be 1..${t.stateKeyBytesMax} characters`);
    }
    if (value.length > t.stateValueBytesMax) {
      throw new GossipError('GOSSIP_STATE_VALUE_TOO_LONG', `state value must be at most ${t.stateValueBytesMax} characters`);
    }
    if (!this.self.state.has(key) && this.self.state.size >= t.stateEntriesMax) {
      throw new GossipError('GOSSIP_STATE_TOO_MANY_KEYS', `at most ${t.stateEntriesMax} state keys`);
    }
    const entry: StateEntry = { key, value, version: ++this.localVersion };
    writableState(this.self).set(key, entry);
    this.self.stateVersion = entry.version;
    if (this.started) this.queueStateUpdate(this.self, entry.version - 1, [entry]);
  }

  /**
   * Broadcast a user event to every member, this one included: delivered at
   * least once and deduplicated (user-events.ts). Throws `GossipError`
   * `GOSSIP_EVENT_TOO_LARGE` (name + payload over `userEventBytesMax`),
   * `GOSSIP_EVENT_QUEUE_FULL` (`userEventQueueMax` of our own events still
   * spreading: back off and retry), `GOSSIP_LEFT`.
   */
  broadcastEvent(name: string, payload: Uint8Array, nowMs: number): UserEventView {
    const t = this.tuning;
    if (this.leaving) throw new GossipError('GOSSIP_LEFT', 'this member has left');
    if (name.length + payload.byteLength > t.userEventBytesMax) {
      this.stats.userEventsRefused++;
      throw new GossipError('GOSSIP_EVENT_TOO_LARGE', `user event name + payload must be at most ${t.userEventBytesMax} bytes`);
    }
    this.ownEventKeys = this.ownEventKeys.filter((k) => this.queue.peek(k) !== undefined);
    if (this.ownEventKeys.length >= t.userEventQueueMax) {
      this.stats.userEventsRefused++;
      throw new GossipError('GOSSIP_EVENT_QUEUE_FULL', `${this.ownEventKeys.length} user events of this member are still spreading (userEventQueueMax)`);
    }
    const e: UserEvent = { type: MessageType.UserEvent, origin: this.id, generation: this.generation, seq: ++this.userEventSeq, name, payload: new Uint8Array(payload) };
    this.userEvents.accept(e);
    const key = `e:${keyOf(e)}`;
    this.ownEventKeys.push(key);
    if (this.started) this.queue.push(key, e);
    this.stats.userEventsSent++;
    return this.deliverUserEvent(e, nowMs);
  }

  /** Leave gracefully: announce `left`, stop probing. Keep driving the node a few gossip intervals so it spreads. */
  leave(nowMs: number): void {
    if (this.leaving) return;
    this.leaving = true;
    this.setStatus(this.self, 'left', nowMs);
    const msg: Left = { type: MessageType.Left, id: this.id, generation: this.generation, incarnation: this.self.incarnation };
    this.queue.push(`m:${this.id}`, msg);
    const targets = pickRandom(this.memberArr, this.tuning.gossipFanout, this.random, (m) => m !== this.self && isLive(m));
    for (const m of targets) this.send(m.address, [msg]);
  }

  /**
   * Adopt known members without rumors or events — for restoring a persisted
   * view and for bootstrapping large simulations. Members already known are
   * merged as from a push-pull exchange.
   */
  loadView(records: readonly MemberRecord[], nowMs: number): void {
    for (const r of records) {
      if (r.id === this.id) continue;
      if (this.membersById.has(r.id)) {
        this.mergeRecords([r], nowMs);
        continue;
      }
      if (this.membersById.size >= this.tuning.membersMax) break;
      const m = newMember(r.id, r.address, r.generation, r.incarnation, nowMs);
      m.status = r.status === 'suspect' ? 'alive' : r.status;
      this.mergeRecordEntries(m, r);
      m.heartbeat = r.heartbeat;
      this.addMember(m);
      if (isLive(m)) {
        // Not inserted into the current probe pass: the next pass includes it.
        this.liveCount++;
        if (this.tuning.detector === 'phi') this.resetArrivals(m, nowMs);
      }
    }
  }

  // ---- outputs ------------------------------------------------------------

  pollTransmit(): Transmit[] {
    const out = this.transmits;
    this.transmits = [];
    return out;
  }

  pollStream(): StreamRequest[] {
    const out = this.streams;
    this.streams = [];
    return out;
  }

  pollEvents(): GossipEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** Receive events synchronously instead of polling (pollEvents then stays empty). */
  onEvent(listener: ((e: GossipEvent) => void) | undefined): void {
    this.listener = listener;
  }

  /** User events delivered since the last poll (when no listener is set). */
  pollUserEvents(): UserEventView[] {
    const out = this.userEventOut;
    this.userEventOut = [];
    return out;
  }

  /** Receive user events synchronously instead of polling. */
  onUserEvent(listener: ((e: UserEventView) => void) | undefined): void {
    this.userEventListener = listener;
  }

  /** When tick() must next be called; undefined before start. */
  nextDeadline(): number | undefined {
    if (!this.started) return undefined;
    let d = Math.min(this.nextGossipAtMs, this.nextPushPullAtMs, this.nextReconnectAtMs, this.joinRetryAtMs, this.nextHeartbeatAtMs, this.joinPushPullAtMs);
    if (this.tuning.detector === 'swim' && !this.leaving && this.probe === undefined) d = Math.min(d, this.nextProbeAtMs);
    const p = this.probe;
    if (p !== undefined) d = Math.min(d, p.indirectSent ? p.failAtMs : p.indirectAtMs);
    for (const r of this.relays.values()) if (r.deadlineMs < d) d = r.deadlineMs;
    for (const m of this.suspected) {
      if (m.suspicion === undefined) continue;
      if (m.suspicion.deadlineMs < d) d = m.suspicion.deadlineMs;
      if (m.suspicionCheckAtMs < d) d = m.suspicionCheckAtMs;
    }
    return d === Infinity ? undefined : d;
  }

  // ---- views --------------------------------------------------------------

  get incarnation(): number {
    return this.self.incarnation;
  }

  get isJoined(): boolean {
    return this.joined;
  }

  /** Members alive or suspect, self included. */
  get numLive(): number {
    return this.liveCount;
  }

  /** Rumors waiting in the broadcast queue. */
  get pendingBroadcasts(): number {
    return this.queue.size;
  }

  /** Snapshot of every member known (self included). */
  members(): MemberView[] {
    return this.memberArr.map(viewOf);
  }

  member(id: string): MemberView | undefined {
    const m = this.membersById.get(id);
    return m === undefined ? undefined : viewOf(m);
  }

  /** Status of `id` without building a view (cheap, for simulations). */
  statusOf(id: string): MemberStatus | undefined {
    return this.membersById.get(id)?.status;
  }

  /** (generation, incarnation) of `id` as known here. */
  incarnationOf(id: string): { generation: number; incarnation: number } | undefined {
    const m = this.membersById.get(id);
    return m === undefined ? undefined : { generation: m.generation, incarnation: m.incarnation };
  }

  /** Value of `key` in the state of member `id`. */
  stateOf(id: string, key: string): string | undefined {
    return this.membersById.get(id)?.state.get(key)?.value;
  }

  /**
   * Estimated clock offset of every live member (alive or suspect) measured so
   * far: positive when that member's wall clock is ahead of ours. Needs a
   * `wallClock` in the config; members probed since their current generation
   * started have one (each member is probed about once per N probe intervals).
   * The estimate is the sample with the smallest bound at `nowMs`.
   */
  clockOffsets(nowMs: number): ReadonlyMap<string, ClockOffset> {
    const out = new Map<string, ClockOffset>();
    for (const m of this.memberArr) {
      if (m.clock === undefined || !isLive(m)) continue;
      const e = m.clock.estimate(nowMs);
      if (e !== undefined) out.set(m.id, e);
    }
    return out;
  }

  /** Current phi of member `id` (phi detector only). */
  phiOf(id: string, nowMs: number): number {
    return this.membersById.get(id)?.arrivals?.phi(nowMs) ?? 0;
  }

  // ---- packet handlers -----------------------------------------------------

  private handleMessage(from: string, msg: PacketMessage, nowMs: number): void {
    switch (msg.type) {
      case MessageType.Ping:
        return this.handlePing(msg);
      case MessageType.PingReq:
        return this.handlePingReq(msg, nowMs);
      case MessageType.Ack:
        return this.handleAck(msg, nowMs);
      case MessageType.Nack:
        if (this.probe !== undefined && this.probe.seqNo === msg.seqNo) this.probe.nacks++;
        return;
      case MessageType.Suspect:
        return this.handleSuspect(msg, nowMs);
      case MessageType.Alive:
        return this.handleAlive(msg, nowMs);
      case MessageType.Dead:
        return this.handleDead(msg, nowMs);
      case MessageType.Left:
        return this.handleDead(msg, nowMs);
      case MessageType.StateUpdate:
        return this.handleStateUpdate(msg, nowMs);
      case MessageType.Heartbeat:
        return this.handleHeartbeat(msg, nowMs);
      case MessageType.PullReq:
        return this.handlePullReq(msg);
      case MessageType.UserEvent:
        return this.handleUserEvent(msg, nowMs);
      default: {
        const never: never = msg;
        void never;
        void from;
        this.stats.dropped++;
      }
    }
  }

  private handlePing(msg: Ping): void {
    if (msg.target !== this.id) {
      this.stats.dropped++;
      return;
    }
    const ack: Ack = { type: MessageType.Ack, seqNo: msg.seqNo, source: this.id };
    if (this.wallClock !== undefined) ack.wallMs = this.wallClock();
    this.send(msg.sourceAddr, [ack]);
  }

  private handlePingReq(msg: PingReq, nowMs: number): void {
    if (this.relays.size >= this.tuning.pendingProbesMax || msg.target === this.id) {
      this.stats.dropped++;
      return;
    }
    const seqNo = ++this.seqNo;
    this.relays.set(seqNo, {
      origSeqNo: msg.seqNo,
      replyTo: msg.sourceAddr,
      nack: msg.nack,
      deadlineMs: nowMs + this.tuning.probeTimeoutMs,
    });
    this.send(msg.targetAddr, [{ type: MessageType.Ping, seqNo, target: msg.target, source: this.id, sourceAddr: this.address } satisfies Ping]);
  }

  private handleAck(msg: Ack, nowMs: number): void {
    const p = this.probe;
    if (p !== undefined && p.seqNo === msg.seqNo) {
      // Lifeguard: only a direct ack is evidence that we are healthy.
      if (!p.indirectSent) this.awareness.applyDelta(-1);
      this.probe = undefined;
      if (msg.source === p.target.id) this.sampleClock(p, msg, nowMs);
      return;
    }
    const r = this.relays.get(msg.seqNo);
    if (r !== undefined) {
      this.relays.delete(msg.seqNo);
      const relayed: Ack = { type: MessageType.Ack, seqNo: r.origSeqNo, source: msg.source };
      if (msg.wallMs !== undefined) relayed.wallMs = msg.wallMs;
      this.send(r.replyTo, [relayed]);
    }
  }

  /** An ack of our probe that carries the target's wall clock: one offset sample (clock-offset.ts). */
  private sampleClock(p: ActiveProbe, msg: Ack, nowMs: number): void {
    const m = p.target;
    if (msg.wallMs === undefined || p.sentWallMs === undefined || this.wallClock === undefined) return;
    // Only for the life we pinged: a restarted member may run on another clock.
    if (this.membersById.get(m.id) !== m || m.generation !== p.generation) return;
    const sample = clockSample(p.sentWallMs, msg.wallMs, this.wallClock(), nowMs);
    if (sample === undefined) return;
    m.clock ??= new ClockWindow(this.tuning.clockSamplesMax, this.tuning.clockDriftPpmMax);
    this.stats.clockSamplesContradicted += m.clock.add(sample);
    this.stats.clockSamples++;
  }

  private handleSuspect(msg: Suspect, nowMs: number): void {
    const m = this.membersById.get(msg.id);
    if (m === undefined) return;
    if (m === this.self) {
      this.refute(msg.generation, msg.incarnation);
      this.tellAlive(msg.from, nowMs);
      return;
    }
    if (msg.generation !== m.generation || msg.incarnation < m.incarnation) return;
    if (m.status === 'suspect' && msg.incarnation === m.incarnation) {
      if (m.suspicion !== undefined && m.suspicion.confirm(msg.from)) this.queue.push(`m:${m.id}`, msg);
      return;
    }
    // A suspicion of a later incarnation than the one we suspect means the
    // member refuted ours (it is alive at that incarnation) and is accused
    // afresh: the old suspicion is void and its timer must not run on (nor
    // count this as a confirmation). Start over at the new incarnation.
    if (m.status !== 'alive' && m.status !== 'suspect') return;
    m.incarnation = msg.incarnation;
    this.setStatus(m, 'suspect', nowMs);
    const t = this.tuning;
    const n = this.liveCount;
    let k = t.suspicionConfirmations;
    if (n - 2 < k) k = 0;
    const minMs = Math.max(Math.floor(t.suspicionFloorMult * t.probeIntervalMs), suspicionTimeoutMs(t.suspicionMult, n, t.probeIntervalMs));
    m.suspicion = new Suspicion(msg.from, k, minMs, t.suspicionMaxTimeoutMult * minMs, nowMs);
    m.suspicionCheckAtMs = nowMs + minMs / 2;
    this.suspected.add(m);
    this.queue.push(`m:${m.id}`, msg);
    this.emit('suspect', m, nowMs);
    if (msg.from === this.id) {
      this.stats.suspicionsRaised++;
      // Lifeguard: tell the suspect directly so it can refute at once.
      this.send(m.address, [msg]);
    }
  }

  private handleAlive(msg: Alive, nowMs: number, announceNew = true): void {
    if (msg.id === this.id) {
      // Someone holds a higher incarnation of our current life: outbid it.
      if (msg.generation === this.generation && msg.incarnation > this.self.incarnation) this.refute(msg.generation, msg.incarnation);
      return;
    }
    let m = this.membersById.get(msg.id);
    if (m === undefined) {
      if (this.membersById.size >= this.tuning.membersMax) {
        this.stats.dropped++;
        return;
      }
      m = newMember(msg.id, msg.address, msg.generation, msg.incarnation, nowMs);
      this.addMember(m);
      this.liveCount++;
      this.probeOrder.insert(m.id);
      if (this.tuning.detector === 'phi') this.resetArrivals(m, nowMs);
      if (announceNew) this.queue.push(`m:${m.id}`, msg, this.tuning.joinRetransmitMult);
      this.emit('join', m, nowMs);
      return;
    }
    if (compareIncarnation(msg.generation, msg.incarnation, m.generation, m.incarnation) <= 0) return;
    const prev = m.status;
    const newLife = msg.generation !== m.generation;
    if (newLife) {
      m.state = EMPTY_STATE;
      m.stateVersion = 0;
      m.heartbeat = 0;
      m.clock = undefined;
    }
    m.generation = msg.generation;
    m.incarnation = msg.incarnation;
    m.address = msg.address;
    this.setStatus(m, 'alive', nowMs);
    if (this.tuning.detector === 'phi') this.resetArrivals(m, nowMs);
    this.queue.push(`m:${m.id}`, msg, newLife ? this.tuning.joinRetransmitMult : 1);
    if (prev === 'left') this.emit('join', m, nowMs);
    else if (prev !== 'alive') this.emit('alive', m, nowMs);
  }

  private handleDead(msg: Dead | Left, nowMs: number): void {
    const m = this.membersById.get(msg.id);
    if (m === undefined) return;
    const left = msg.type === MessageType.Left;
    if (m === this.self) {
      if (!this.leaving) {
        this.refute(msg.generation, msg.incarnation);
        if (msg.type === MessageType.Dead) this.tellAlive(msg.from, nowMs);
      }
      return;
    }
    if (compareIncarnation(msg.generation, msg.incarnation, m.generation, m.incarnation) < 0) return;
    if (m.status === 'dead' || m.status === 'left') {
      if (!(left && m.status === 'dead')) return;
    }
    if (msg.generation !== m.generation) {
      m.state = EMPTY_STATE;
      m.stateVersion = 0;
      m.heartbeat = 0;
      m.clock = undefined;
    }
    m.generation = msg.generation;
    m.incarnation = msg.incarnation;
    this.setStatus(m, left ? 'left' : 'dead', nowMs);
    this.queue.push(`m:${m.id}`, msg);
    this.emit(left ? 'left' : 'dead', m, nowMs);
  }

  private handleStateUpdate(msg: StateUpdate, nowMs: number): void {
    const m = this.membersById.get(msg.id);
    if (m === undefined || m === this.self) return;
    const entries = this.validEntries(msg.entries);
    const changed = mergeEntries(m, msg.generation, entries);
    // With an entry dropped the update no longer holds every change above its base.
    const base = entries.length === msg.entries.length ? msg.base : topVersion(entries);
    advanceStateVersion(m, msg.generation, base, topVersion(entries));
    if (changed.length === 0) return;
    // Passed on whole, with its base, so the next receiver can tell whether it closes a gap.
    this.queueStateUpdate(m, base, entries);
    this.emit('update', m, nowMs, changed);
  }

  private handleHeartbeat(msg: Heartbeat, nowMs: number): void {
    const m = this.membersById.get(msg.id);
    if (m === undefined || m === this.self || msg.generation !== m.generation || msg.counter <= m.heartbeat) return;
    m.heartbeat = msg.counter;
    m.arrivals?.add(nowMs);
    this.queue.push(`h:${m.id}`, msg);
  }

  private handleUserEvent(msg: UserEvent, nowMs: number): void {
    if (msg.name.length + msg.payload.byteLength > this.tuning.userEventBytesMax) {
      this.stats.dropped++;
      return;
    }
    if (!this.userEvents.accept(msg)) {
      this.stats.userEventsDuplicate++;
      return;
    }
    this.queue.push(`e:${keyOf(msg)}`, msg);
    this.deliverUserEvent(msg, nowMs);
  }

  /** Events of a stream message: deliver the new ones (or, on joining, only record them: they predate us). */
  private mergeUserEvents(events: readonly UserEvent[] | undefined, nowMs: number, deliver: boolean): void {
    if (events === undefined) return;
    for (const e of events) {
      if (e.name.length + e.payload.byteLength > this.tuning.userEventBytesMax) {
        this.stats.dropped++;
        continue;
      }
      if (!this.userEvents.accept(e)) {
        this.stats.userEventsDuplicate++;
        continue;
      }
      if (deliver) this.deliverUserEvent(e, nowMs);
    }
  }

  private deliverUserEvent(e: UserEvent, nowMs: number): UserEventView {
    this.stats.userEventsDelivered++;
    const view: UserEventView = { origin: e.origin, generation: e.generation, seq: e.seq, name: e.name, payload: e.payload, atMs: nowMs };
    if (this.userEventListener !== undefined) this.userEventListener(view);
    else if (this.userEventOut.length < this.tuning.outboxMax) this.userEventOut.push(view);
    else this.stats.outboxOverflow++;
    return view;
  }

  /** How far this node has delivered `m`'s user events (its own: all it sent). */
  private eventFloorOf(m: Member): number {
    return m === this.self ? this.userEventSeq : this.userEvents.floorOf(m.id, m.generation);
  }

  private digestWithEvents(m: Member): Digest {
    const d = digestOf(m);
    const floor = this.eventFloorOf(m);
    if (floor > 0) d.events = floor;
    return d;
  }

  private recordWithEvents(m: Member, known?: Digest): MemberRecord {
    const r = recordOf(m, known);
    const floor = this.eventFloorOf(m);
    if (floor > 0) r.events = floor;
    return r;
  }

  /** Buffered events of `m` above `floor` into `out` (bounded by streamRecordsMax). */
  private eventsOf(m: Member, generation: number, floor: number, out: UserEvent[]): void {
    if (generation !== m.generation) floor = 0;
    this.userEvents.eventsAbove(m.id, m.generation, floor, this.tuning.streamRecordsMax, out);
  }

  private handlePullReq(msg: PullReq): void {
    if (msg.source === this.id || this.queue.size === 0) return;
    this.send(msg.sourceAddr, []);
  }

  // ---- stream (push-pull anti-entropy) --------------------------------------

  private synOf(join: boolean): Syn {
    const digests: Digest[] = [];
    for (const m of this.memberArr) {
      if (digests.length >= this.tuning.streamRecordsMax) break;
      digests.push(this.digestWithEvents(m));
    }
    return { type: MessageType.Syn, source: this.id, sourceAddr: this.address, join, digests };
  }

  private openStream(to: string, join: boolean): void {
    if (this.streams.length >= this.tuning.outboxMax) {
      this.stats.outboxOverflow++;
      return;
    }
    this.stats.streamsOpened++;
    this.streams.push({ to, msg: this.synOf(join) });
  }

  private handleSyn(msg: Syn, nowMs: number): SynAck {
    const max = this.tuning.streamRecordsMax;
    const records: MemberRecord[] = [];
    const requests: Digest[] = [];
    const events: UserEvent[] = [];
    const listed = new Set<string>();
    for (const d of msg.digests) {
      listed.add(d.id);
      const m = this.membersById.get(d.id);
      if (m === undefined) {
        if ((d.status === 'alive' || d.status === 'suspect') && requests.length < max) {
          requests.push({ id: d.id, generation: d.generation, incarnation: 0, status: 'alive', version: 0, heartbeat: 0 });
        }
      } else {
        const theirEvents = d.events ?? 0;
        if (isNewerThanDigest(m, d) && records.length < max) records.push(this.recordWithEvents(m, d));
        const wantEvents = d.generation === m.generation && theirEvents > this.eventFloorOf(m);
        if ((isDigestNewer(m, d) || wantEvents) && requests.length < max) requests.push(this.digestWithEvents(m));
        this.eventsOf(m, d.generation, theirEvents, events);
      }
    }
    for (const m of this.memberArr) {
      if (records.length >= max) break;
      if (!listed.has(m.id)) {
        records.push(this.recordWithEvents(m));
        this.eventsOf(m, m.generation, 0, events);
      }
    }
    const synAck: SynAck = { type: MessageType.SynAck, source: this.id, records, requests };
    if (events.length > 0) synAck.events = events;
    return synAck;
  }

  private handleSynAck(from: string, msg: SynAck, nowMs: number): SynAck2 | undefined {
    const joining = !this.joined;
    this.joined = true;
    this.joinRetryAtMs = Infinity;
    // The view we are handed when we join (and by its follow-up) is the
    // peer's: the members in it are news to us, not to the cluster, whose
    // members announce themselves. Re-announcing them made every member of a
    // burst join queue ~N rumors at 2 · λ·log N sends each, so that its gossip
    // ran at the full packet budget (15 full datagrams a second) for seconds,
    // most of the CPU of a 100-member burst on one core. Periodic push-pulls
    // still re-announce what they bring, which spreads a healed partition.
    const handedView = joining || (this.joinFollowUpFrom !== undefined && from === this.joinFollowUpFrom);
    if (!joining && handedView) this.joinFollowUpFrom = undefined;
    this.mergeRecords(msg.records, nowMs, !handedView);
    if (joining && this.tuning.joinPushPullDelayMs > 0) {
      // The peer that let us in is among the records just merged.
      this.joinPushPullTo = this.membersById.get(msg.source)?.address;
      this.joinPushPullAtMs = nowMs + this.tuning.joinPushPullDelayMs;
    }
    if (joining) {
      // Events from before we joined are not ours to deliver: start from where the member that let us in stood.
      for (const r of msg.records) if (r.events !== undefined && r.id !== this.id) this.userEvents.skipTo(r.id, r.generation, r.events);
    }
    this.mergeUserEvents(msg.events, nowMs, !joining);
    const records: MemberRecord[] = [];
    const events: UserEvent[] = [];
    for (const d of msg.requests) {
      const m = this.membersById.get(d.id);
      if (m === undefined) continue;
      if (records.length < this.tuning.streamRecordsMax) records.push(this.recordWithEvents(m, d));
      this.eventsOf(m, d.generation, d.events ?? 0, events);
    }
    if (records.length === 0 && events.length === 0) return undefined;
    const ack2: SynAck2 = { type: MessageType.SynAck2, source: this.id, records };
    if (events.length > 0) ack2.events = events;
    return ack2;
  }

  /** `announce`: queue the Alive of members new to us as a rumor (false for a view we were handed at join). */
  private mergeRecords(records: readonly MemberRecord[], nowMs: number, announce = true): void {
    for (const r of records) {
      if (r.id === this.id) {
        if (r.status !== 'alive' || r.incarnation > this.self.incarnation) this.refute(r.generation, r.incarnation);
        continue;
      }
      const known = this.membersById.get(r.id);
      switch (r.status) {
        case 'alive':
          this.handleAlive({ type: MessageType.Alive, id: r.id, address: r.address, generation: r.generation, incarnation: r.incarnation }, nowMs, announce);
          break;
        case 'suspect':
        case 'dead': {
          // memberlist mergeState: a remote "dead" only makes us suspect, so a
          // member that is in fact alive gets the chance to refute.
          if (known === undefined) {
            if (r.status === 'dead') continue;
            this.handleAlive({ type: MessageType.Alive, id: r.id, address: r.address, generation: r.generation, incarnation: r.incarnation }, nowMs, announce);
          }
          const m = this.membersById.get(r.id);
          if (m === undefined) continue;
          if (m.status === 'dead' || m.status === 'left') {
            if (r.status === 'dead') this.handleDead({ type: MessageType.Dead, id: r.id, generation: r.generation, incarnation: r.incarnation, from: this.id }, nowMs);
          } else {
            this.handleSuspect({ type: MessageType.Suspect, id: r.id, generation: r.generation, incarnation: r.incarnation, from: this.id }, nowMs);
          }
          break;
        }
        case 'left':
          if (known !== undefined) this.handleDead({ type: MessageType.Left, id: r.id, generation: r.generation, incarnation: r.incarnation }, nowMs);
          break;
        default: {
          const never: never = r.status;
          void never;
          this.stats.dropped++;
          continue;
        }
      }
      const m = this.membersById.get(r.id);
      if (m === undefined || m.generation !== r.generation) continue;
      const changed = this.mergeRecordEntries(m, r);
      if (changed.length > 0) this.emit('update', m, nowMs, changed);
      if (r.heartbeat > m.heartbeat) {
        m.heartbeat = r.heartbeat;
        m.arrivals?.add(nowMs);
      }
    }
  }

  // ---- timers --------------------------------------------------------------

  private startProbe(nowMs: number): void {
    const target = this.probeOrder.next(
      () => {
        const ids: string[] = [];
        for (const m of this.memberArr) if (m !== this.self && isLive(m)) ids.push(m.id);
        return ids;
      },
      (id) => {
        const m = this.membersById.get(id);
        return m !== undefined && m !== this.self && isLive(m);
      },
    );
    if (target === undefined) return;
    const m = this.membersById.get(target)!;
    const t = this.tuning;
    const seqNo = ++this.seqNo;
    this.probe = {
      seqNo,
      target: m,
      generation: m.generation,
      incarnation: m.incarnation,
      sentWallMs: this.wallClock?.(),
      indirectAtMs: nowMs + this.awareness.scaleTimeout(t.probeTimeoutMs),
      failAtMs: nowMs + this.awareness.scaleTimeout(t.probeIntervalMs),
      indirectSent: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.stats.probes++;
    const ping: Ping = { type: MessageType.Ping, seqNo, target: m.id, source: this.id, sourceAddr: this.address };
    if (m.status === 'suspect') {
      // Lifeguard: remind a suspect that it is suspected, in the probe itself.
      this.send(m.address, [ping, { type: MessageType.Suspect, id: m.id, generation: m.generation, incarnation: m.incarnation, from: this.id }]);
    } else {
      this.send(m.address, [ping]);
    }
  }

  private sendIndirectProbes(p: ActiveProbe): void {
    p.indirectSent = true;
    const relays = pickRandom(this.memberArr, this.tuning.indirectChecks, this.random, (m) => m !== this.self && m !== p.target && m.status === 'alive');
    p.expectedNacks = relays.length;
    for (const r of relays) {
      this.stats.indirectProbes++;
      this.send(r.address, [
        { type: MessageType.PingReq, seqNo: p.seqNo, target: p.target.id, targetAddr: p.target.address, source: this.id, sourceAddr: this.address, nack: true } satisfies PingReq,
      ]);
    }
  }

  private probeFailed(p: ActiveProbe, nowMs: number): void {
    this.probe = undefined;
    // Lifeguard: missing nacks mean our own messages are not getting through.
    this.awareness.applyDelta(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1);
    const m = p.target;
    if (this.membersById.get(m.id) !== m || !isLive(m)) return;
    // The silence is evidence about the life we pinged. If the member has since
    // refuted or restarted, handleSuspect drops this as stale.
    this.handleSuspect({ type: MessageType.Suspect, id: m.id, generation: p.generation, incarnation: p.incarnation, from: this.id }, nowMs);
  }

  private gossip(nowMs: number): void {
    const t = this.tuning;
    if (t.mode === 'push' && this.queue.size === 0) return;
    const deadWindow = t.gossipToTheDeadMs;
    const targets = pickRandom(
      this.memberArr,
      t.gossipFanout,
      this.random,
      (m) => m !== this.self && (isLive(m) || (m.status === 'dead' && nowMs - m.statusChangedAtMs < deadWindow)),
    );
    for (const m of targets) {
      if (t.mode === 'push') {
        if (this.queue.size > 0) this.send(m.address, [], true);
      } else {
        const pull: PullReq = { type: MessageType.PullReq, source: this.id, sourceAddr: this.address };
        // pull: only ask; push-pull: ask and offer our rumors in the same datagram.
        this.send(m.address, [pull], false, t.mode === 'push-pull');
      }
    }
  }

  private checkPhi(nowMs: number): void {
    const threshold = this.tuning.phiThreshold;
    for (const m of this.memberArr) {
      if (m === this.self || m.status !== 'alive' || m.arrivals === undefined) continue;
      if (m.arrivals.phi(nowMs) > threshold) {
        this.handleSuspect({ type: MessageType.Suspect, id: m.id, generation: m.generation, incarnation: m.incarnation, from: this.id }, nowMs);
      }
    }
  }

  private pushPullRandom(nowMs: number): void {
    void nowMs;
    const [m] = pickRandom(this.memberArr, 1, this.random, (x) => x !== this.self && x.status === 'alive');
    if (m !== undefined) this.openStream(m.address, false);
  }

  /** Contact one dead member or absent seed, so a healed partition merges again. */
  private reconnect(nowMs: number): void {
    void nowMs;
    const [dead] = pickRandom(this.memberArr, 1, this.random, (x) => x.status === 'dead');
    const liveAddrs = this.seeds.length > 0 ? new Set(this.memberArr.filter(isLive).map((x) => x.address)) : undefined;
    const seeds = liveAddrs === undefined ? [] : this.seeds.filter((s) => !liveAddrs.has(s));
    const pool = (dead !== undefined ? 1 : 0) + seeds.length;
    if (pool === 0) return;
    const i = Math.floor(this.random() * pool);
    const to = dead !== undefined && i === 0 ? dead.address : seeds[i - (dead !== undefined ? 1 : 0)]!;
    this.openStream(to, false);
  }

  private reap(nowMs: number): void {
    const after = this.tuning.reapDeadAfterMs;
    let any = false;
    for (const m of this.memberArr) {
      if ((m.status === 'dead' || m.status === 'left') && m !== this.self && nowMs - m.statusChangedAtMs >= after) {
        this.membersById.delete(m.id);
        this.queue.delete(`m:${m.id}`);
        this.queue.delete(`s:${m.id}`);
        this.queue.delete(`h:${m.id}`);
        this.userEvents.forget(m.id);
        any = true;
      }
    }
    if (any) this.memberArr = this.memberArr.filter((m) => this.membersById.get(m.id) === m);
  }

  private sendJoin(nowMs: number): void {
    const picks = pickRandom(this.seeds, JOIN_SEEDS_MAX, this.random, () => true);
    this.joinStreamsOpen.clear();
    for (const s of picks) {
      this.openStream(s, true);
      this.joinStreamsOpen.add(s);
    }
    this.joinRetryAtMs = nowMs + this.tuning.streamTimeoutMs + this.joinBackoffMs();
  }

  /** Join backoff of the current attempt: joinRetryMs doubling up to joinRetryMaxMs. */
  private joinBackoffMs(): number {
    const t = this.tuning;
    return Math.min(t.joinRetryMaxMs, t.joinRetryMs * 2 ** Math.min(this.joinAttempt, 30));
  }

  // ---- helpers ---------------------------------------------------------------

  private refute(accusedGeneration: number, accusedIncarnation: number): void {
    // Claims about an earlier life are stale: our Alive of this generation outranks them.
    if (accusedGeneration !== this.generation || this.leaving) return;
    if (accusedIncarnation < this.self.incarnation) return;
    this.self.incarnation = accusedIncarnation + 1;
    this.awareness.applyDelta(1);
    this.stats.refutations++;
    const alive = this.aliveMsgOfSelf();
    this.queue.push(`m:${this.id}`, alive);
  }

  /**
   * Answer an accuser directly with our current Alive. Rumors about us may be
   * stale (an accuser that missed our last refutation suspects an old
   * incarnation, which the rumor mill no longer corrects); this closes that gap.
   * At most once per probe interval per accuser.
   */
  private tellAlive(accuserId: string, nowMs: number): void {
    const accuser = this.membersById.get(accuserId);
    if (accuser === undefined || accuser === this.self || !isLive(accuser)) return;
    const last = this.toldAliveAtMs.get(accuserId);
    if (last !== undefined && nowMs - last < this.tuning.probeIntervalMs) return;
    if (this.toldAliveAtMs.size >= this.tuning.pendingProbesMax) this.toldAliveAtMs.clear();
    this.toldAliveAtMs.set(accuserId, nowMs);
    this.send(accuser.address, [this.aliveMsgOfSelf()]);
  }

  private readonly toldAliveAtMs = new Map<string, number>();

  private aliveMsgOfSelf(): Alive {
    return { type: MessageType.Alive, id: this.id, address: this.address, generation: this.generation, incarnation: this.self.incarnation };
  }

  /**
   * Merges a push-pull or loaded record's entries into `m`. The sender held
   * everything up to `r.version` and sent all it held above the version this
   * node asked from (or all, unasked), and this node's version only rises
   * within a generation: so this node now holds everything up to `r.version`.
   */
  private mergeRecordEntries(m: Member, r: MemberRecord): string[] {
    const entries = this.validEntries(r.entries);
    const changed = mergeEntries(m, r.generation, entries);
    if (entries.length === r.entries.length) advanceStateVersion(m, r.generation, 0, r.version);
    return changed;
  }

  /**
   * Queues the changes of `m`'s state above `base` as one rumor, merged with
   * the member's rumor already queued: the two cover one version interval
   * when theirs touch (lowest base kept), else the later interval's base is
   * kept and the earlier entries ride along.
   */
  private queueStateUpdate(m: Member, base: number, entries: StateEntry[]): void {
    const key = `s:${m.id}`;
    const prev = this.queue.peek(key);
    let merged = entries;
    let mergedBase = base;
    if (prev !== undefined && prev.type === MessageType.StateUpdate && prev.generation === m.generation) {
      const byKey = new Map<string, StateEntry>();
      for (const e of prev.entries) byKey.set(e.key, e);
      for (const e of entries) {
        const cur = byKey.get(e.key);
        if (cur === undefined || cur.version < e.version) byKey.set(e.key, e);
      }
      merged = [...byKey.values()];
      const touch = prev.base <= topVersion(entries) && base <= topVersion(prev.entries);
      mergedBase = touch ? Math.min(prev.base, base) : Math.max(prev.base, base);
    }
    this.queue.push(key, { type: MessageType.StateUpdate, id: m.id, generation: m.generation, base: mergedBase, entries: merged } satisfies StateUpdate);
  }

  /** Entries within the configured bounds; the rest are dropped and counted. */
  private validEntries(entries: readonly StateEntry[]): StateEntry[] {
    const t = this.tuning;
    const out: StateEntry[] = [];
    for (const e of entries) {
      if (out.length >= t.stateEntriesMax || e.key.length === 0 || e.key.length > t.stateKeyBytesMax || e.value.length > t.stateValueBytesMax) {
        this.stats.dropped++;
        continue;
      }
      out.push(e);
    }
    return out;
  }

  private resetArrivals(m: Member, nowMs: number): void {
    m.arrivals = new ArrivalWindow(this.tuning.phiWindowSize, this.tuning.phiMinMeanMs);
    m.arrivals.add(nowMs);
  }

  private addMember(m: Member): void {
    this.membersById.set(m.id, m);
    this.memberArr.push(m);
  }

  private setStatus(m: Member, status: MemberStatus, nowMs: number): void {
    const wasLive = isLive(m);
    m.status = status;
    m.statusChangedAtMs = nowMs;
    const live = isLive(m);
    if (wasLive !== live && m !== this.self) this.liveCount += live ? 1 : -1;
    if (status !== 'suspect') {
      m.suspicion = undefined;
      m.suspicionCheckAtMs = Infinity;
      this.suspected.delete(m);
    }
  }

  /**
   * Queue one datagram to `to`: `primary` messages first, then (with
   * `piggyback`) rumors up to the packet budget. With `onlyIfRumors`, nothing
   * is sent when no rumor fits.
   */
  private send(to: string, primary: PacketMessage[], onlyIfRumors = false, piggyback = true): void {
    const t = this.tuning;
    const before = primary.length;
    let msgs = primary;
    if (piggyback) {
      let used = 0;
      for (const m of primary) used += estimateSize(m) + MESSAGE_OVERHEAD_BYTES;
      msgs = this.queue.take(t.packetBudgetBytes - used, retransmitLimit(t.retransmitMult, this.liveCount), primary);
    }
    if (msgs.length === 0 || (onlyIfRumors && msgs.length === before)) return;
    if (this.transmits.length >= t.outboxMax) {
      this.stats.outboxOverflow++;
      return;
    }
    this.stats.packetsSent++;
    this.stats.messagesSent += msgs.length;
    this.transmits.push({ to, msgs });
  }

  private emit(type: GossipEventType, m: Member, atMs: number, keys?: string[]): void {
    if (this.listener === undefined && this.events.length >= this.tuning.outboxMax) {
      this.stats.outboxOverflow++;
      return;
    }
    const e: GossipEvent = keys === undefined ? { type, member: viewOf(m), atMs } : { type, member: viewOf(m), atMs, keys };
    if (this.listener !== undefined) this.listener(e);
    else this.events.push(e);
  }
}

function isLive(m: Member): boolean {
  return m.status === 'alive' || m.status === 'suspect';
}

function viewOf(m: Member): MemberView {
  const state: Record<string, string> = {};
  for (const [k, e] of m.state) state[k] = e.value;
  return {
    id: m.id,
    address: m.address,
    status: m.status,
    generation: m.generation,
    incarnation: m.incarnation,
    state,
    stateVersion: m.stateVersion,
  };
}
