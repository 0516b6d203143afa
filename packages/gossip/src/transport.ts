/**
 * The transport interface: what the gossip runtime needs from a network.
 *
 * Modelled on hashicorp/memberlist `transport.go`: two channels of very
 * different quality.
 *
 * - Packets: unreliable, unordered, size-bounded datagrams to an address
 *   `host:port` (UDP in `net-transport.ts`). Probes, acks and piggybacked
 *   gossip travel here.
 * - Streams: a reliable request/response exchange of one bounded frame each
 *   way (TCP with a length prefix in `net-transport.ts`). Push-pull anti-entropy
 *   of full state travels here.
 *
 * Transports move opaque bytes. They never decode, decrypt or interpret what
 * they carry: that is the codec's job (`codec.ts`), so every transport gets the
 * same label check, encryption and validation.
 *
 * Contracts common to all implementations (checked by
 * `test/transport-conformance.ts`):
 * - Nothing here throws because of the network or a peer. Unreachable peers,
 *   refused connections and lost datagrams are normal: `sendPacket` drops
 *   silently (and counts), `request` rejects with a `TransportError`.
 * - Handlers are called from the event loop, one at a time, never re-entrantly
 *   from inside `sendPacket` or `request`.
 * - The `data` buffer passed to a handler belongs to the handler: the
 *   transport never reuses or mutates it afterwards, so it may be kept.
 * - The `data` buffer passed to `sendPacket` or `request` may be reused by the
 *   caller as soon as the call returns: the transport copies what it must keep
 *   (a datagram is handed to the kernel synchronously; a frame is copied before
 *   the call returns).
 */

/** An address is `host:port`; IPv6 hosts are bracketed: `[::1]:7946`. */
export type Address = string;

/** Stable codes for transport failures. */
export type TransportErrorCode =
  /** A datagram larger than `maxPacketBytes` was handed to `sendPacket`. A caller bug: the codec packs under the limit. */
  | 'TRANSPORT_PACKET_TOO_LARGE'
  /** A stream frame larger than `maxFrameBytes` was sent or received. */
  | 'TRANSPORT_FRAME_TOO_LARGE'
  /** The peer could not be reached (connection refused, no route, host unknown). */
  | 'TRANSPORT_UNREACHABLE'
  /** The peer did not answer a stream request in time. */
  | 'TRANSPORT_TIMEOUT'
  /** The peer closed the stream without a complete response, or answered with nothing. */
  | 'TRANSPORT_NO_RESPONSE'
  /** The transport is closed (or was closed while the request was in flight). */
  | 'TRANSPORT_CLOSED'
  /** An address that is not `host:port` with a port in 0..65535. */
  | 'TRANSPORT_BAD_ADDRESS'
  /** Binding the local sockets failed (port in use, bad host). */
  | 'TRANSPORT_BIND_FAILED';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Receives one datagram. `from` is the sender's packet address (its bound
 * `localAddress` for both shipped transports).
 */
export type PacketHandler = (from: Address, data: Uint8Array) => void;

/**
 * Answers one stream request. Return the response frame, or `undefined` to
 * close the stream without answering (for example when the request did not
 * decode). May be async; the transport bounds how long it waits
 * (`streamTimeoutMs`). A handler that throws is treated like `undefined`.
 *
 * `from` is the remote end of the connection; for TCP that is an ephemeral
 * port, not the peer's gossip address, so identity must come from the request
 * body.
 */
export type StreamHandler = (from: Address, data: Uint8Array) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

/**
 * Decides, from the complete first frame of an incoming stream, whether the
 * peer is one of ours (for the gossip runtime: the frame decrypts with the
 * keyring, or carries the cluster label without one). Called before the
 * stream takes a slot or reaches the handler; a false answer closes the
 * stream unanswered (`streamsUnauthenticated`). Must be synchronous and cheap.
 */
export type StreamAuthenticator = (data: Uint8Array) => boolean;

/** Counters every transport keeps; all only ever rise. */
export interface TransportStats {
  packetsSent: number;
  packetBytesSent: number;
  packetsReceived: number;
  packetBytesReceived: number;
  /** Datagrams the OS or the simulated network refused to send (unreachable, closed). */
  packetSendErrors: number;
  streamsOpened: number;
  streamsAccepted: number;
  streamBytesSent: number;
  streamBytesReceived: number;
  /** Outgoing requests that failed (any `TransportError`). */
  streamRequestErrors: number;
  /** Incoming streams dropped for any reason: the four below, oversize or truncated frames, no answer in time, handler gave none. */
  streamsDropped: number;
  /** Incoming streams whose first frame failed the authenticator. */
  streamsUnauthenticated: number;
  /** Incoming connections that did not deliver a complete first frame within the handshake timeout (real sockets). */
  streamsHandshakeTimedOut: number;
  /** Unauthenticated connections closed to make room for newer ones (real sockets). */
  streamsPendingEvicted: number;
  /** Authenticated streams refused because every stream slot was answering. */
  streamsRefusedBusy: number;
  /** Handlers that threw; the transport caught it so the event loop goes on. Any rise is a bug. */
  handlerErrors: number;
}

export function emptyTransportStats(): TransportStats {
  return {
    packetsSent: 0,
    packetBytesSent: 0,
    packetsReceived: 0,
    packetBytesReceived: 0,
    packetSendErrors: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
    streamBytesSent: 0,
    streamBytesReceived: 0,
    streamRequestErrors: 0,
    streamsDropped: 0,
    streamsUnauthenticated: 0,
    streamsHandshakeTimedOut: 0,
    streamsPendingEvicted: 0,
    streamsRefusedBusy: 0,
    handlerErrors: 0,
  };
}

export interface Transport {
  /** The address peers use to reach this transport, with the real port (never 0). */
  readonly localAddress: Address;
  /**
   * Largest datagram `sendPacket` accepts. Larger incoming datagrams are still
   * delivered (up to what the network carries) so the codec counts them as
   * `oversize` in one place.
   */
  readonly maxPacketBytes: number;
  /** Largest stream frame (request or response) either side accepts. */
  readonly maxFrameBytes: number;

  /**
   * Send one datagram, best effort. Never blocks and never throws for network
   * reasons: an unreachable peer or a closed transport counts
   * `packetSendErrors` and drops the packet.
   * Throws `TransportError('TRANSPORT_PACKET_TOO_LARGE')` when
   * `data.byteLength > maxPacketBytes`, and `TRANSPORT_BAD_ADDRESS` for an
   * address that does not parse: both are caller bugs.
   */
  sendPacket(to: Address, data: Uint8Array): void;

  /**
   * Send one request frame over a reliable stream and resolve with the single
   * response frame. Rejects (never throws synchronously) with a
   * `TransportError`: `TRANSPORT_UNREACHABLE`, `TRANSPORT_TIMEOUT` (after
   * `timeoutMs` in total, connecting included), `TRANSPORT_NO_RESPONSE`,
   * `TRANSPORT_FRAME_TOO_LARGE`, `TRANSPORT_CLOSED`, `TRANSPORT_BAD_ADDRESS`.
   */
  request(to: Address, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;

  /** Install the datagram handler (replaces any previous one). Before one is set, datagrams are dropped. */
  onPacket(handler: PacketHandler): void;
  /**
   * Install the stream handler (replaces any previous one). Before one is set,
   * streams are closed unanswered. With `authenticate`, a stream reaches the
   * handler (and takes a slot) only once its first frame passes it.
   */
  onStream(handler: StreamHandler, authenticate?: StreamAuthenticator): void;

  /** Counters since the transport was created. Returns a copy. */
  stats(): TransportStats;

  /**
   * Stop receiving, close the sockets and reject requests in flight with
   * `TRANSPORT_CLOSED`. Idempotent. After the promise resolves the port is
   * free again and no handler is called any more.
   */
  close(): Promise<void>;
}

/** Split `host:port` (or `[v6]:port`). Throws `TRANSPORT_BAD_ADDRESS`. */
export function parseAddress(address: Address): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) throw new TransportError('TRANSPORT_BAD_ADDRESS', `not host:port: ${JSON.stringify(address)}`);
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (host.includes(':')) throw new TransportError('TRANSPORT_BAD_ADDRESS', `IPv6 host must be bracketed: ${JSON.stringify(address)}`);
  if (!/^[0-9]{1,5}$/.test(portText)) throw new TransportError('TRANSPORT_BAD_ADDRESS', `bad port in ${JSON.stringify(address)}`);
  const port = Number(portText);
  if (port > 65535 || host.length === 0) throw new TransportError('TRANSPORT_BAD_ADDRESS', `bad address ${JSON.stringify(address)}`);
  return { host, port };
}

/** Join a host and port into an `Address`, bracketing IPv6 hosts. */
export function formatAddress(host: string, port: number): Address {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
