/**
 * The gossip runtime: drives the pure core (`GossipNode`) with timers and a
 * transport. Everything the core hands out is sent; everything the transport
 * hands in is decoded and validated by the codec first.
 *
 * The loop, after every input (a datagram, a stream, a timer):
 *   core.handle*(…, now) → drain pollTransmit() (packed into datagrams),
 *   pollStream() (push-pull exchanges), pollEvents() (to listeners) →
 *   arm one timer for core.nextDeadline().
 *
 * Nothing from the network throws into this loop: undecodable input is
 * dropped and counted by reason (`stats().drops`), transport failures are
 * counted, and an exception from the core or a listener (a bug) is caught,
 * counted and logged so the member keeps running.
 */
import type { Clock } from '@hearsay/clock';
import { Codec, DROP_REASONS, emptyDropCounters, type DropCounters, type DropReason, type EncryptionPolicy } from './codec.ts';
import type { ClockOffset } from './clock-offset.ts';
import type { UserEventView } from './user-events.ts';
import { DEFAULT_TUNING, type GossipTuning } from './config.ts';
import { fileGenerationStore, nextGeneration, type GenerationStore } from './generation-store.ts';
import type { Keyring } from './keyring.ts';
import { parseMessage } from './message-parser.ts';
import { isPacketMessage, isStreamMessage, type Message, type PacketMessage, type StreamMessage } from './messages.ts';
import { createNetTransport } from './net-transport.ts';
import { GossipNode, type GossipEvent, type GossipEventType, type GossipStats, type MemberView, type StreamRequest } from './node.ts';
import { TransportError, type Address, type Transport, type TransportStats } from './transport.ts';

export interface GossipLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Time source and timer for the runtime (`@hearsay/clock`'s one interface); real time by default, virtual time in simulations. */
export type RuntimeClock = Clock;

export const realClock: RuntimeClock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const handle = setTimeout(callback, Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    return () => clearTimeout(handle);
  },
};

export interface GossipRuntimeOptions {
  /** Stable member id; survives restarts. */
  id: string;
  /** Host to bind UDP and TCP on, e.g. '127.0.0.1'. Ignored when `transport` is given. */
  host?: string;
  /** Port for UDP and TCP; 0 picks a free one (see `localAddress`). Default 7946. Ignored when `transport` is given. */
  port?: number;
  /** Host others use to reach us when `host` is a wildcard. */
  advertiseHost?: string;
  /** `host:port` of members to join through; our own address is ignored. */
  seeds?: readonly string[];
  /** Cluster label; members with another label never hear us. Default ''. */
  label?: string;
  /** Encrypt everything with the keyring's primary key; drop plaintext. */
  keyring?: Keyring;
  /** With a keyring: whether to send sealed and accept plaintext (to turn encryption on in a live cluster). Default strict. */
  encryption?: Partial<EncryptionPolicy>;
  /** Protocol tuning; defaults are the LAN profile (config.ts). */
  config?: Partial<GossipTuning>;
  /** Initial application state to publish. */
  state?: Readonly<Record<string, string>>;
  /** Where the generation persists: a store, or a file path. Without it the generation is the boot time in ms. */
  persistence?: GenerationStore | string;
  logger?: GossipLogger;
  /** Largest datagram, header and encryption included. Default 1400. */
  maxPacketBytes?: number;
  /** Largest stream frame. Default 8 MiB. */
  maxFrameBytes?: number;
  /** Outgoing push-pull exchanges in flight at once; more are refused and reported to the core. Default 8. */
  maxConcurrentExchanges?: number;
  /**
   * Incoming push-pull streams answered at once (real sockets). A stream takes
   * a slot only once its first frame authenticates (decrypts with the keyring,
   * or carries our label when there is none). Default 64.
   */
  maxConcurrentStreams?: number;
  /** How long an incoming connection may take to send its complete first frame (real sockets). Default 2000 ms. */
  handshakeTimeoutMs?: number;
  /** Incoming connections not yet authenticated; beyond it the oldest is closed (real sockets). Default 128. */
  maxPendingStreams?: number;
  /** Bytes those connections may buffer in all; beyond it the oldest is closed (real sockets). Default 4 × maxFrameBytes. */
  maxPendingBytes?: number;
  /** How long `leave()` keeps gossiping so the `left` news spreads. Default 3 gossip intervals. */
  leavePropagationMs?: number;
  /** Use this transport instead of binding UDP/TCP (e.g. the simulated one). The runtime closes it on stop. */
  transport?: Transport;
  /** Default: real time. */
  clock?: RuntimeClock;
  /** Random source in [0, 1) for the core. Default Math.random (the runtime is not the deterministic part). */
  random?: () => number;
  /**
   * This member's wall clock (ms since the epoch) for clock offset estimates
   * (`clockOffsets()`). Default Date.now. A simulation passes a skewed clock
   * per member.
   */
  wallClock?: () => number;
}

export interface GossipRuntimeStats {
  /** Incoming datagrams, frames and single messages dropped, by reason. */
  drops: DropCounters;
  /** Sum of `drops`. */
  droppedTotal: number;
  /** Outgoing messages too large for a datagram (not sent). */
  packetsTooLarge: number;
  /** Outgoing datagrams the transport refused (bad address from a peer, closed). */
  sendErrors: number;
  /** Push-pull exchanges we opened that failed (unreachable, timeout, bad answer). */
  exchangesFailed: number;
  exchangesCompleted: number;
  /** Exceptions from the core or listeners; any rise is a bug (each is logged). */
  internalErrors: number;
  transport: TransportStats;
  core: GossipStats;
  /** `clockOffsets()` as a plain object, member id → estimate. */
  clockOffsets: Record<string, ClockOffset>;
}

export type GossipRuntimeEvent = GossipEventType | 'event';
export type GossipListener = (event: GossipEvent) => void;

/** Longest push-pull conversation we follow (Syn → SynAck → SynAck2 is 2 round trips). */
const EXCHANGE_LEGS_MAX = 4;
const EMPTY = new Uint8Array(0);

export type GossipRuntimeErrorCode = 'GOSSIP_RUNTIME_STOPPED';

export class GossipRuntimeError extends Error {
  override readonly name = 'GossipRuntimeError';
  readonly code: GossipRuntimeErrorCode;
  constructor(code: GossipRuntimeErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Bind sockets (unless `options.transport`), load and bump the generation, join through the seeds. */
export async function startGossip(options: GossipRuntimeOptions): Promise<GossipRuntime> {
  const clock = options.clock ?? realClock;
  const store = typeof options.persistence === 'string' ? fileGenerationStore(options.persistence) : options.persistence;
  const generation = nextGeneration(store === undefined ? undefined : await store.load(), clock.now());
  await store?.save(generation);
  const maxPacketBytes = options.maxPacketBytes;
  const maxFrameBytes = options.maxFrameBytes;
  const transport =
    options.transport ??
    (await createNetTransport({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 7946,
      ...(options.advertiseHost === undefined ? {} : { advertiseHost: options.advertiseHost }),
      ...(maxPacketBytes === undefined ? {} : { maxPacketBytes }),
      ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }),
      ...(options.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: options.maxConcurrentStreams }),
      ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }),
      ...(options.maxPendingStreams === undefined ? {} : { maxPendingStreams: options.maxPendingStreams }),
      ...(options.maxPendingBytes === undefined ? {} : { maxPendingBytes: options.maxPendingBytes }),
    }));
  try {
    return new GossipRuntime(options, transport, generation, clock);
  } catch (error) {
    await transport.close();
    throw error;
  }
}

export class GossipRuntime {
  readonly id: string;
  readonly localAddress: Address;
  readonly generation: number;
  readonly #core: GossipNode;
  readonly #codec: Codec<Message>;
  readonly #transport: Transport;
  readonly #clock: RuntimeClock;
  readonly #logger: GossipLogger | undefined;
  readonly #listeners = new Map<GossipRuntimeEvent, Set<GossipListener>>();
  readonly #userEventListeners = new Set<(event: UserEventView) => void>();
  readonly #drops = emptyDropCounters();
  readonly #counters = { packetsTooLarge: 0, sendErrors: 0, exchangesFailed: 0, exchangesCompleted: 0, internalErrors: 0 };
  readonly #maxConcurrentExchanges: number;
  readonly #leavePropagationMs: number;
  readonly #exchanges = new Set<Promise<void>>();
  /** Incoming frames the transport admitted, decoded once (see #authenticateStream). */
  readonly #authenticated = new WeakMap<Uint8Array, StreamMessage>();
  #cancelTimer: (() => void) | undefined;
  #timerAtMs: number | undefined;
  #left = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  /** Use `startGossip`; this wraps a transport that is already open. */
  constructor(options: GossipRuntimeOptions, transport: Transport, generation: number, clock: RuntimeClock) {
    this.id = options.id;
    this.localAddress = transport.localAddress;
    this.generation = generation;
    this.#transport = transport;
    this.#clock = clock;
    this.#logger = options.logger;
    this.#maxConcurrentExchanges = options.maxConcurrentExchanges ?? 8;
    this.#codec = new Codec<Message>({
      parse: parseMessage,
      maxPacketBytes: transport.maxPacketBytes,
      maxFrameBytes: transport.maxFrameBytes,
      ...(options.label === undefined ? {} : { label: options.label }),
      ...(options.keyring === undefined ? {} : { keyring: options.keyring }),
      ...(options.encryption === undefined ? {} : { encryption: options.encryption }),
    });
    this.#core = new GossipNode({
      ...options.config,
      // The core fills a datagram by estimate; give it what the envelope leaves (a long label or encryption costs room).
      packetBudgetBytes: options.config?.packetBudgetBytes ?? Math.min(DEFAULT_TUNING.packetBudgetBytes, this.#codec.messageBudgetBytes),
      id: options.id,
      address: transport.localAddress,
      generation,
      random: options.random ?? Math.random,
      wallClock: options.wallClock ?? Date.now,
      ...(options.seeds === undefined ? {} : { seeds: options.seeds }),
      ...(options.state === undefined ? {} : { state: options.state }),
    });
    this.#leavePropagationMs = options.leavePropagationMs ?? 3 * this.#core.tuning.gossipIntervalMs;
    transport.onPacket((from, data) => this.#onPacket(from, data));
    transport.onStream(
      (from, data) => this.#onStream(from, data),
      (data) => this.#authenticateStream(data),
    );
    this.#guard('start', () => this.#core.start(this.#clock.now()));
    this.#pump();
  }

  /** Publish (or change) one key of this member's application state. Throws `GossipError` codes for bad keys/values. */
  setLocalState(key: string, value: string): void {
    if (this.#stopped) throw new GossipRuntimeError('GOSSIP_RUNTIME_STOPPED', 'runtime is stopped');
    this.#core.setLocalState(key, value);
    this.#pump();
  }

  /**
   * Broadcast a user event (a small payload: `name` plus `payload` at most
   * `userEventBytesMax`, 512 by default) to every member, this one included.
   * Delivered at least once to every member up while the event is buffered,
   * each copy deduplicated (see `onUserEvent`). Throws `GossipError`
   * `GOSSIP_EVENT_TOO_LARGE`, `GOSSIP_EVENT_QUEUE_FULL` (this member's own
   * events still spreading reached `userEventQueueMax`: retry later),
   * `GOSSIP_LEFT`; `GOSSIP_RUNTIME_STOPPED` after stop.
   */
  broadcastEvent(name: string, payload: Uint8Array): UserEventView {
    if (this.#stopped) throw new GossipRuntimeError('GOSSIP_RUNTIME_STOPPED', 'runtime is stopped');
    const view = this.#core.broadcastEvent(name, payload, this.#clock.now());
    this.#pump();
    return view;
  }

  /** Listen to user events (each delivered once per member). Returns a function that unsubscribes. */
  onUserEvent(listener: (event: UserEventView) => void): () => void {
    this.#userEventListeners.add(listener);
    return () => this.#userEventListeners.delete(listener);
  }

  /**
   * Change the encryption policy while running (needs a keyring). Turning
   * encryption on without downtime: restart members one by one with the
   * keyring and `{ encryptOutgoing: false, acceptPlaintext: true }`; then set
   * `encryptOutgoing: true` everywhere; then `acceptPlaintext: false` everywhere.
   */
  setEncryptionPolicy(policy: Partial<EncryptionPolicy>): void {
    this.#codec.setEncryptionPolicy(policy);
  }

  /** Snapshot of every member known here, this one included. */
  members(): MemberView[] {
    return this.#core.members();
  }

  member(id: string): MemberView | undefined {
    return this.#core.member(id);
  }

  get incarnation(): number {
    return this.#core.incarnation;
  }

  /**
   * Listen to membership events: 'join', 'update', 'suspect', 'alive',
   * 'dead', 'left', or 'event' for all. Returns a function that unsubscribes.
   * A listener that throws is logged and counted, never breaks the loop.
   */
  on(type: GossipRuntimeEvent, listener: GossipListener): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  stats(): GossipRuntimeStats {
    let droppedTotal = 0;
    for (const reason of DROP_REASONS) droppedTotal += this.#drops[reason];
    return {
      drops: { ...this.#drops },
      droppedTotal,
      ...this.#counters,
      transport: this.#transport.stats(),
      core: { ...this.#core.stats },
      clockOffsets: Object.fromEntries(this.clockOffsets()),
    };
  }

  /**
   * Estimated wall-clock offset of each live member measured so far, from
   * the probes' round trips (NTP-style; see clock-offset.ts): `offsetMs`
   * positive when that member's clock is ahead of ours, the true offset within
   * `offsetMs ± errorMs`, `measuredAtMs` on this runtime's clock. A member
   * appears once this one has probed it in its current generation (each
   * member is probed about once per N probe intervals).
   */
  clockOffsets(): ReadonlyMap<string, ClockOffset> {
    return this.#core.clockOffsets(this.#clock.now());
  }

  /**
   * Leave gracefully: announce `left` and keep gossiping for
   * `leavePropagationMs` so the news spreads. The member stays reachable
   * until `stop()`. Idempotent.
   */
  async leave(): Promise<void> {
    if (this.#stopped || this.#left) return;
    this.#left = true;
    this.#guard('leave', () => this.#core.leave(this.#clock.now()));
    this.#pump();
    await new Promise<void>((resolve) => this.#clock.setTimer(resolve, this.#leavePropagationMs));
  }

  /**
   * Stop: leave gracefully (unless `{ leave: false }`, which is what a crash
   * looks like to the others), then close the sockets. Idempotent.
   */
  stop(options: { leave?: boolean } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      if (options.leave !== false) await this.leave();
      this.#stopped = true;
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      await this.#transport.close();
      await Promise.allSettled([...this.#exchanges]);
    })();
    return this.#stopping;
  }

  // ---- input ----------------------------------------------------------------

  #onPacket(from: Address, data: Uint8Array): void {
    if (this.#stopped) return;
    const decoded = this.#codec.decodePacket(data);
    if (!decoded.ok) return this.#drop(decoded.reason);
    for (const reason of decoded.dropped) this.#drop(reason);
    const messages: PacketMessage[] = [];
    for (const m of decoded.messages) {
      if (isPacketMessage(m)) messages.push(m);
      else this.#drop('wrong-kind');
    }
    if (messages.length === 0) return;
    this.#guard('handlePacket', () => this.#core.handlePacket(from, messages, this.#clock.now()));
    this.#pump();
  }

  /**
   * The transport's admission check for an incoming stream: its first frame
   * must decode as one stream message of ours (label, and the keyring's
   * decryption when there is one). The decoded message is kept for #onStream,
   * so a frame is decrypted once.
   */
  #authenticateStream(data: Uint8Array): boolean {
    if (this.#stopped) return false;
    const message = this.#decodeStreamMessage(data);
    if (message === undefined) return false;
    this.#authenticated.set(data, message);
    return true;
  }

  /** Answer one incoming stream leg: the core's reply, an empty frame when the exchange is over, nothing for bad input. */
  #onStream(from: Address, data: Uint8Array): Uint8Array | undefined {
    if (this.#stopped) return undefined;
    const message = this.#authenticated.get(data) ?? this.#decodeStreamMessage(data);
    this.#authenticated.delete(data);
    if (message === undefined) return undefined;
    let reply: StreamMessage | undefined;
    // `from` is the connection's ephemeral TCP port; the core identifies the peer from the message.
    this.#guard('handleStream', () => {
      reply = this.#core.handleStream(from, message, this.#clock.now());
    });
    this.#pump();
    return reply === undefined ? EMPTY : this.#codec.encodeFrame([reply]);
  }

  #decodeStreamMessage(data: Uint8Array): StreamMessage | undefined {
    const decoded = this.#codec.decodeFrame(data);
    if (!decoded.ok) {
      this.#drop(decoded.reason);
      return undefined;
    }
    for (const reason of decoded.dropped) this.#drop(reason);
    if (decoded.messages.length !== 1 || decoded.dropped.length !== 0) {
      if (decoded.messages.length > 0) this.#drop('malformed');
      return undefined;
    }
    const message = decoded.messages[0]!;
    if (!isStreamMessage(message)) {
      this.#drop('wrong-kind');
      return undefined;
    }
    return message;
  }

  #onTimer(): void {
    this.#cancelTimer = undefined;
    this.#timerAtMs = undefined;
    if (this.#stopped) return;
    this.#guard('tick', () => this.#core.tick(this.#clock.now()));
    this.#pump();
  }

  // ---- output ---------------------------------------------------------------

  /** Drain everything the core produced and re-arm the timer. */
  #pump(): void {
    if (this.#stopped) return;
    for (const transmit of this.#core.pollTransmit()) this.#sendPackets(transmit.to, transmit.msgs);
    for (const request of this.#core.pollStream()) this.#startExchange(request);
    for (const event of this.#core.pollEvents()) this.#emit(event);
    for (const event of this.#core.pollUserEvents()) this.#emitUserEvent(event);
    this.#arm();
  }

  #arm(): void {
    const deadline = this.#core.nextDeadline();
    if (deadline === this.#timerAtMs) return;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#timerAtMs = deadline;
    if (deadline === undefined) return;
    this.#cancelTimer = this.#clock.setTimer(() => this.#onTimer(), deadline - this.#clock.now());
  }

  #sendPackets(to: Address, messages: PacketMessage[]): void {
    const { packets, tooLarge } = this.#codec.packPackets(messages);
    if (tooLarge.length > 0) {
      this.#counters.packetsTooLarge += tooLarge.length;
      this.#logger?.warn('gossip: message too large for a datagram, not sent', { to, types: tooLarge.map((m) => m.type) });
    }
    for (const packet of packets) {
      try {
        this.#transport.sendPacket(to, packet);
      } catch (error) {
        this.#counters.sendErrors++;
        this.#logger?.debug?.('gossip: datagram not sent', { to, error: String(error) });
      }
    }
  }

  #startExchange(request: StreamRequest): void {
    if (this.#exchanges.size >= this.#maxConcurrentExchanges) {
      this.#counters.exchangesFailed++;
      this.#guard('handleStreamError', () => this.#core.handleStreamError(request.to, this.#clock.now()));
      return;
    }
    const exchange = this.#exchange(request).finally(() => this.#exchanges.delete(exchange));
    this.#exchanges.add(exchange);
  }

  /** Run one push-pull conversation: send, feed each answer to the core, send its reply, until either side is done. */
  async #exchange(request: StreamRequest): Promise<void> {
    const timeoutMs = this.#core.tuning.streamTimeoutMs;
    let outgoing: StreamMessage | undefined = request.msg;
    try {
      for (let leg = 0; outgoing !== undefined; leg++) {
        if (leg >= EXCHANGE_LEGS_MAX) throw new Error(`exchange longer than ${EXCHANGE_LEGS_MAX} legs`);
        const frame = this.#codec.encodeFrame([outgoing]);
        const answer = await this.#transport.request(request.to, frame, timeoutMs);
        if (this.#stopped) return;
        if (answer.byteLength === 0) break;
        const message = this.#decodeStreamMessage(answer);
        if (message === undefined) throw new Error('undecodable answer');
        outgoing = undefined;
        this.#guard('handleStream', () => {
          outgoing = this.#core.handleStream(request.to, message, this.#clock.now());
        });
        this.#pump();
      }
      this.#counters.exchangesCompleted++;
    } catch (error) {
      if (this.#stopped) return;
      this.#counters.exchangesFailed++;
      this.#logger?.debug?.('gossip: push-pull failed', {
        to: request.to,
        error: error instanceof TransportError ? error.code : String(error),
      });
      this.#guard('handleStreamError', () => this.#core.handleStreamError(request.to, this.#clock.now()));
      this.#pump();
    }
  }

  #emit(event: GossipEvent): void {
    for (const type of [event.type, 'event'] as const) {
      for (const listener of this.#listeners.get(type) ?? []) {
        try {
          listener(event);
        } catch (error) {
          this.#counters.internalErrors++;
          this.#logger?.error('gossip: event listener threw', { event: event.type, error: String(error) });
        }
      }
    }
  }

  #emitUserEvent(event: UserEventView): void {
    for (const listener of this.#userEventListeners) {
      try {
        listener(event);
      } catch (error) {
        this.#counters.internalErrors++;
        this.#logger?.error('gossip: user event listener threw', { name: event.name, error: String(error) });
      }
    }
  }

  #drop(reason: DropReason): void {
    this.#drops[reason]++;
  }

  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#counters.internalErrors++;
      this.#logger?.error(`gossip: core ${what} threw`, { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  }
}
