/**
 * The simulated transport: the `Transport` interface over `@hearsay/sim`'s
 * network, so the same runtime and codec run on virtual time with loss,
 * delay, partitions, crashes and stalls (memberlist `mock_transport.go`, but
 * over a lossy network rather than a perfect one).
 *
 * Datagrams are unreliable sends on the network. A stream request is a
 * reliable send carrying a request id, and its answer a reliable send back:
 * never lost, but blocked by partitions and crashes like TCP would be. A
 * request to an address nothing is attached at (or that is crashed or across
 * a partition at send time) fails `TRANSPORT_UNREACHABLE`, like a refused
 * connection; one whose answer never comes fails `TRANSPORT_TIMEOUT` on the
 * requester's own (stallable) timer.
 *
 * Async stream handlers resolve through microtasks, so whoever drives the
 * scheduler must let microtasks run between events (see `simTransportHarness`
 * in the tests, or drive it from an async loop).
 */
import type { SimNetwork } from '@hearsay/sim';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_PACKET_BYTES } from '../codec.ts';
import type { RuntimeClock } from '../runtime.ts';
import {
  emptyTransportStats,
  parseAddress,
  TransportError,
  type Address,
  type PacketHandler,
  type StreamAuthenticator,
  type StreamHandler,
  type Transport,
  type TransportStats,
} from '../transport.ts';

/** What travels on a simulated network shared by sim transports. */
export type SimWire =
  | { kind: 'packet'; data: Uint8Array }
  | { kind: 'request'; id: number; data: Uint8Array }
  /** `data` undefined: the peer closed the stream without answering. */
  | { kind: 'response'; id: number; data: Uint8Array | undefined };

export interface SimTransportOptions {
  /** The address to attach at; must look like `host:port`. */
  address: Address;
  maxPacketBytes?: number;
  maxFrameBytes?: number;
}

interface Pending {
  resolve: (data: Uint8Array) => void;
  reject: (error: TransportError) => void;
}

const owners = new WeakMap<SimNetwork<SimWire>, Map<Address, SimTransport>>();

/** Attach a transport at `options.address`. Throws `TRANSPORT_BIND_FAILED` if an open transport holds it. */
export function createSimTransport(network: SimNetwork<SimWire>, options: SimTransportOptions): SimTransport {
  parseAddress(options.address);
  let byAddress = owners.get(network);
  if (byAddress === undefined) owners.set(network, (byAddress = new Map()));
  if (byAddress.has(options.address)) {
    throw new TransportError('TRANSPORT_BIND_FAILED', `${options.address} is already in use on this simulated network`);
  }
  const transport = new SimTransport(network, options);
  byAddress.set(options.address, transport);
  return transport;
}

/** Virtual time for a runtime over a sim transport: timers are the node's own (deferred by stalls, dropped by crashes). */
export function simClock(network: SimNetwork<SimWire>, address: Address): RuntimeClock {
  return {
    now: () => network.now,
    setTimer(callback, delayMs) {
      let cancelled = false;
      network.timer(address, network.now + Math.max(0, delayMs), () => {
        if (!cancelled) callback();
      });
      return () => {
        cancelled = true;
      };
    },
  };
}

export class SimTransport implements Transport {
  readonly localAddress: Address;
  readonly maxPacketBytes: number;
  readonly maxFrameBytes: number;
  readonly #network: SimNetwork<SimWire>;
  readonly #stats: TransportStats = emptyTransportStats();
  readonly #pending = new Map<number, Pending>();
  #nextRequestId = 1;
  #packetHandler: PacketHandler | undefined;
  #streamHandler: StreamHandler | undefined;
  #authenticate: StreamAuthenticator | undefined;
  #closed = false;

  /** Use `createSimTransport`, which guards the address. */
  constructor(network: SimNetwork<SimWire>, options: SimTransportOptions) {
    this.#network = network;
    this.localAddress = options.address;
    this.maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    network.attach(this.localAddress, (from, wire) => this.#receive(from, wire));
  }

  onPacket(handler: PacketHandler): void {
    this.#packetHandler = handler;
  }

  onStream(handler: StreamHandler, authenticate?: StreamAuthenticator): void {
    this.#streamHandler = handler;
    this.#authenticate = authenticate;
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  sendPacket(to: Address, data: Uint8Array): void {
    if (data.byteLength > this.maxPacketBytes) {
      throw new TransportError('TRANSPORT_PACKET_TOO_LARGE', `datagram of ${data.byteLength} bytes > maxPacketBytes ${this.maxPacketBytes}`);
    }
    parseAddress(to);
    if (this.#closed) {
      this.#stats.packetSendErrors++;
      return;
    }
    this.#stats.packetsSent++;
    this.#stats.packetBytesSent += data.byteLength;
    // Copy: the caller may reuse `data`, and the receiver owns what it gets.
    if (!this.#network.send(this.localAddress, to, { kind: 'packet', data: Uint8Array.from(data) })) this.#stats.packetSendErrors++;
  }

  request(to: Address, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const fail = (error: TransportError): void => {
        this.#stats.streamRequestErrors++;
        reject(error);
      };
      if (this.#closed) return fail(new TransportError('TRANSPORT_CLOSED', 'transport is closed'));
      if (data.byteLength > this.maxFrameBytes) {
        return fail(new TransportError('TRANSPORT_FRAME_TOO_LARGE', `request of ${data.byteLength} bytes > maxFrameBytes ${this.maxFrameBytes}`));
      }
      try {
        parseAddress(to);
      } catch (error) {
        return fail(error as TransportError);
      }
      const id = this.#nextRequestId++;
      this.#stats.streamsOpened++;
      this.#stats.streamBytesSent += data.byteLength;
      if (!this.#network.send(this.localAddress, to, { kind: 'request', id, data: Uint8Array.from(data) }, true)) {
        return fail(new TransportError('TRANSPORT_UNREACHABLE', `${to} is unreachable`));
      }
      this.#pending.set(id, {
        resolve,
        reject: fail,
      });
      this.#network.timer(this.localAddress, this.#network.now + timeoutMs, () => {
        const pending = this.#pending.get(id);
        if (pending === undefined) return;
        this.#pending.delete(id);
        pending.reject(new TransportError('TRANSPORT_TIMEOUT', `no answer from ${to} within ${timeoutMs} ms`));
      });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(new TransportError('TRANSPORT_CLOSED', 'transport closed during the request'));
    }
    const byAddress = owners.get(this.#network);
    if (byAddress?.get(this.localAddress) === this) {
      byAddress.delete(this.localAddress);
      this.#network.crash(this.localAddress);
    }
  }

  #receive(from: Address, wire: SimWire): void {
    if (this.#closed) return;
    switch (wire.kind) {
      case 'packet': {
        this.#stats.packetsReceived++;
        this.#stats.packetBytesReceived += wire.data.byteLength;
        const handler = this.#packetHandler;
        if (handler === undefined) return;
        try {
          handler(from, wire.data);
        } catch {
          this.#stats.handlerErrors++;
        }
        return;
      }
      case 'request':
        this.#stats.streamsAccepted++;
        this.#stats.streamBytesReceived += wire.data.byteLength;
        void this.#answer(from, wire.id, wire.data);
        return;
      case 'response': {
        const pending = this.#pending.get(wire.id);
        if (pending === undefined) return;
        this.#pending.delete(wire.id);
        if (wire.data === undefined) {
          pending.reject(new TransportError('TRANSPORT_NO_RESPONSE', `${from} closed the stream without an answer`));
        } else if (wire.data.byteLength > this.maxFrameBytes) {
          pending.reject(new TransportError('TRANSPORT_FRAME_TOO_LARGE', `response from ${from} exceeds maxFrameBytes ${this.maxFrameBytes}`));
        } else {
          this.#stats.streamBytesReceived += wire.data.byteLength;
          pending.resolve(wire.data);
        }
        return;
      }
      default: {
        const never: never = wire;
        void never;
      }
    }
  }

  #authenticated(request: Uint8Array): boolean {
    const authenticate = this.#authenticate;
    if (authenticate === undefined) return true;
    let ok = false;
    try {
      ok = authenticate(request);
    } catch {
      this.#stats.handlerErrors++;
    }
    if (!ok) this.#stats.streamsUnauthenticated++;
    return ok;
  }

  async #answer(from: Address, id: number, request: Uint8Array): Promise<void> {
    let response: Uint8Array | undefined;
    const handler = this.#streamHandler;
    if (request.byteLength <= this.maxFrameBytes && handler !== undefined && this.#authenticated(request)) {
      try {
        response = await handler(from, request);
      } catch {
        this.#stats.handlerErrors++;
      }
    }
    if (this.#closed) return;
    if (response !== undefined && response.byteLength > this.maxFrameBytes) response = undefined;
    if (response === undefined) this.#stats.streamsDropped++;
    else this.#stats.streamBytesSent += response.byteLength;
    this.#network.send(this.localAddress, from, { kind: 'response', id, data: response === undefined ? undefined : Uint8Array.from(response) }, true);
  }
}
