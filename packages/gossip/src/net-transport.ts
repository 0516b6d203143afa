/**
 * The real-socket transport: UDP (`node:dgram`) for packets and TCP
 * (`node:net`) for streams, both on one port number (memberlist
 * `net_transport.go`).
 *
 * Stream framing: each direction carries exactly one frame, a 4-byte
 * big-endian length followed by that many bytes. One TCP connection per
 * request; the server answers and ends the connection. Frames above
 * `maxFrameBytes` are refused before they are buffered.
 *
 * Incoming connections are admitted in two stages, so that connections from
 * outside the cluster cannot starve its members (a joiner, a push-pull):
 *   1. pending: accepted, first frame not yet complete. Bounded by
 *      `maxPendingStreams` and `maxPendingBytes` (the oldest pending
 *      connection is closed to admit a new one) and by `handshakeTimeoutMs`.
 *   2. answering: the first frame arrived and passed the handler's
 *      `authenticate` check (for the gossip runtime: it decrypts with the
 *      keyring, or carries the cluster label). Only these take one of the
 *      `maxConcurrentStreams` slots; the answer must come within
 *      `streamTimeoutMs`.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, connect, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_PACKET_BYTES } from './codec.ts';
import {
  emptyTransportStats,
  formatAddress,
  parseAddress,
  TransportError,
  type Address,
  type PacketHandler,
  type StreamAuthenticator,
  type StreamHandler,
  type Transport,
  type TransportStats,
} from './transport.ts';

export interface NetTransportOptions {
  /** Host to bind, e.g. '127.0.0.1'. */
  host: string;
  /** Port for both UDP and TCP; 0 picks a free port (read it from `localAddress`). */
  port: number;
  /** Host peers should use, when binding a wildcard such as 0.0.0.0. Default: `host`. */
  advertiseHost?: string;
  maxPacketBytes?: number;
  maxFrameBytes?: number;
  /** How long the stream handler may take to answer an authenticated request. Default 10 s. */
  streamTimeoutMs?: number;
  /** Authenticated incoming streams answered at once; more are closed and counted (`streamsRefusedBusy`). Default 64. */
  maxConcurrentStreams?: number;
  /** How long an accepted connection may take to deliver its complete first frame. Default 2000 ms. */
  handshakeTimeoutMs?: number;
  /** Accepted connections whose first frame is not complete yet; beyond it the oldest is closed (`streamsPendingEvicted`). Default 128. */
  maxPendingStreams?: number;
  /** Bytes buffered by those connections in all; beyond it the oldest is closed. Default 4 × `maxFrameBytes`. */
  maxPendingBytes?: number;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 2000;
export const DEFAULT_MAX_PENDING_STREAMS = 128;
export const DEFAULT_MAX_CONCURRENT_STREAMS = 64;
export const DEFAULT_STREAM_TIMEOUT_MS = 10_000;

const FRAME_HEADER_BYTES = 4;
const BIND_ATTEMPTS_MAX = 16;

/** Bind UDP and TCP on one port and return the transport. Rejects with `TRANSPORT_BIND_FAILED`. */
export async function createNetTransport(options: NetTransportOptions): Promise<NetTransport> {
  const attempts = options.port === 0 ? BIND_ATTEMPTS_MAX : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    // allowHalfOpen: the client ends its side after the request; we still answer.
    const server = createServer({ allowHalfOpen: true });
    const udp = createSocket({ type: isIPv6(options.host) ? 'udp6' : 'udp4' });
    try {
      // TCP first: with port 0 the kernel picks a port free for TCP; UDP on the
      // same number is then very likely free, and we retry if it is not.
      const port = await listen(server, options.host, options.port);
      await bindUdp(udp, options.host, port);
      return new NetTransport(options, port, udp, server);
    } catch (error) {
      lastError = error;
      server.close();
      try {
        udp.close();
      } catch {
        // not bound yet
      }
    }
  }
  throw new TransportError('TRANSPORT_BIND_FAILED', `cannot bind UDP+TCP on ${formatAddress(options.host, options.port)}: ${String(lastError)}`, {
    cause: lastError,
  });
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      const bound = server.address();
      if (bound === null || typeof bound === 'string') reject(new Error('TCP server has no port'));
      else resolve(bound.port);
    });
  });
}

function bindUdp(udp: UdpSocket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address: host, port, exclusive: true }, () => {
      udp.off('error', reject);
      resolve();
    });
  });
}

interface PendingRequest {
  socket: TcpSocket;
  fail: (error: TransportError) => void;
}

/** One incoming connection, from accept to close. */
interface Incoming {
  socket: TcpSocket;
  /** Bytes of the first frame buffered so far, while pending. */
  bufferedBytes: number;
  /** Why it is closed, when it is (counted once); undefined while open. */
  close: (reason: IncomingDrop) => void;
}

type IncomingDrop = 'evicted' | 'handshake-timeout' | 'unauthenticated' | 'busy' | 'bad-frame' | 'no-answer' | 'closed';

export class NetTransport implements Transport {
  readonly localAddress: Address;
  readonly maxPacketBytes: number;
  readonly maxFrameBytes: number;
  readonly #streamTimeoutMs: number;
  readonly #maxConcurrentStreams: number;
  readonly #handshakeTimeoutMs: number;
  readonly #maxPendingStreams: number;
  readonly #maxPendingBytes: number;
  readonly #udp: UdpSocket;
  readonly #server: Server;
  readonly #stats: TransportStats = emptyTransportStats();
  readonly #pending = new Set<PendingRequest>();
  /** Incoming connections without a complete, authenticated first frame; oldest first (Set keeps insertion order). */
  readonly #unauthenticated = new Set<Incoming>();
  #unauthenticatedBytes = 0;
  /** Incoming connections being answered: these hold the stream slots. */
  readonly #answering = new Set<Incoming>();
  #packetHandler: PacketHandler | undefined;
  #streamHandler: StreamHandler | undefined;
  #authenticate: StreamAuthenticator | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Use `createNetTransport`; this wraps sockets that are already bound. */
  constructor(options: NetTransportOptions, port: number, udp: UdpSocket, server: Server) {
    this.localAddress = formatAddress(options.advertiseHost ?? options.host, port);
    this.maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#streamTimeoutMs = options.streamTimeoutMs ?? DEFAULT_STREAM_TIMEOUT_MS;
    this.#maxConcurrentStreams = options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#maxPendingStreams = options.maxPendingStreams ?? DEFAULT_MAX_PENDING_STREAMS;
    // At least one whole frame fits, or a legitimate large Syn could never be admitted.
    this.#maxPendingBytes = Math.max(options.maxPendingBytes ?? 4 * this.maxFrameBytes, this.maxFrameBytes + FRAME_HEADER_BYTES);
    this.#udp = udp;
    this.#server = server;
    udp.on('message', (data, rinfo) => {
      if (this.#closed) return;
      this.#stats.packetsReceived++;
      this.#stats.packetBytesReceived += data.byteLength;
      const handler = this.#packetHandler;
      if (handler === undefined) return;
      try {
        handler(formatAddress(rinfo.address, rinfo.port), data);
      } catch {
        this.#stats.handlerErrors++;
      }
    });
    // ICMP errors and the like surface here on some platforms; a datagram
    // transport has nothing to do about them but count.
    udp.on('error', () => {
      this.#stats.packetSendErrors++;
    });
    server.on('connection', (socket) => this.#serve(socket));
    server.on('error', () => {
      // Listening errors after bind (rare) leave the packet path working.
    });
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
    const { host, port } = parseAddress(to);
    if (this.#closed) {
      this.#stats.packetSendErrors++;
      return;
    }
    // dgram reads the buffer after an async lookup, so copy: the caller may reuse `data`.
    const copy = Buffer.from(data);
    this.#stats.packetsSent++;
    this.#stats.packetBytesSent += copy.byteLength;
    try {
      this.#udp.send(copy, port, host, (error) => {
        if (error) this.#stats.packetSendErrors++;
      });
    } catch {
      this.#stats.packetSendErrors++;
    }
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
      let target: { host: string; port: number };
      try {
        target = parseAddress(to);
      } catch (error) {
        return fail(error as TransportError);
      }
      const frame = encodeFrameHeader(data);
      const socket = connect({ host: target.host, port: target.port });
      this.#stats.streamsOpened++;
      let settled = false;
      const pending: PendingRequest = { socket, fail: (e) => finish(e) };
      this.#pending.add(pending);
      const timer = setTimeout(() => finish(new TransportError('TRANSPORT_TIMEOUT', `no answer from ${to} within ${timeoutMs} ms`)), timeoutMs);
      const finish = (result: Uint8Array | TransportError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(pending);
        socket.destroy();
        if (result instanceof TransportError) fail(result);
        else resolve(result);
      };
      const reader = new FrameReader(this.maxFrameBytes);
      socket.on('connect', () => {
        this.#stats.streamBytesSent += frame.byteLength;
        socket.end(frame);
      });
      socket.on('data', (chunk: Buffer) => {
        this.#stats.streamBytesReceived += chunk.byteLength;
        const r = reader.push(chunk);
        if (r === 'too-large') finish(new TransportError('TRANSPORT_FRAME_TOO_LARGE', `response from ${to} exceeds maxFrameBytes ${this.maxFrameBytes}`));
        else if (r !== undefined) finish(r);
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? '';
        const unreachable = ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'].includes(code);
        finish(new TransportError(unreachable ? 'TRANSPORT_UNREACHABLE' : 'TRANSPORT_NO_RESPONSE', `stream to ${to}: ${error.message}`, { cause: error }));
      });
      socket.on('close', () => finish(new TransportError('TRANSPORT_NO_RESPONSE', `${to} closed the stream without a complete answer`)));
    });
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    for (const p of [...this.#pending]) p.fail(new TransportError('TRANSPORT_CLOSED', 'transport closed during the request'));
    for (const c of [...this.#unauthenticated, ...this.#answering]) c.close('closed');
    const udpClosed = new Promise<void>((resolve) => {
      try {
        this.#udp.close(() => resolve());
      } catch {
        resolve();
      }
    });
    const tcpClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#closing = Promise.all([udpClosed, tcpClosed]).then(() => undefined);
    return this.#closing;
  }

  #serve(socket: TcpSocket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    // Room for the newcomer first: the oldest unauthenticated connection goes.
    // A member's connection sends its frame at once, so it is never the oldest
    // for long; idle or trickling outsiders are.
    while (this.#unauthenticated.size >= this.#maxPendingStreams) this.#evictOldest(undefined);
    this.#stats.streamsAccepted++;
    const from = formatAddress(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
    let state: 'pending' | 'answering' | 'closed' = 'pending';
    let timer = setTimeout(() => conn.close('handshake-timeout'), this.#handshakeTimeoutMs);
    const conn: Incoming = {
      socket,
      bufferedBytes: 0,
      close: (reason) => {
        if (state === 'closed') return;
        if (state === 'pending') this.#leavePending(conn);
        else this.#answering.delete(conn);
        state = 'closed';
        clearTimeout(timer);
        this.#count(reason);
        socket.destroy();
      },
    };
    this.#unauthenticated.add(conn);
    const reader = new FrameReader(this.maxFrameBytes);
    socket.on('error', () => conn.close('bad-frame'));
    // The client ended its side before a whole frame arrived: a truncated request.
    socket.on('end', () => {
      if (state === 'pending') conn.close('bad-frame');
    });
    socket.on('close', () => conn.close('bad-frame'));
    socket.on('data', (chunk: Buffer) => {
      if (state !== 'pending') return;
      this.#stats.streamBytesReceived += chunk.byteLength;
      conn.bufferedBytes += chunk.byteLength;
      this.#unauthenticatedBytes += chunk.byteLength;
      while (this.#unauthenticatedBytes > this.#maxPendingBytes && this.#unauthenticated.size > 1) this.#evictOldest(conn);
      const request = reader.push(chunk);
      if (request === undefined) return;
      if (request === 'too-large') return conn.close('bad-frame');
      this.#leavePending(conn);
      clearTimeout(timer);
      const authenticate = this.#authenticate;
      if (authenticate !== undefined && !this.#safeAuthenticate(authenticate, request)) return conn.close('unauthenticated');
      if (this.#answering.size >= this.#maxConcurrentStreams) return conn.close('busy');
      state = 'answering';
      this.#answering.add(conn);
      timer = setTimeout(() => conn.close('no-answer'), this.#streamTimeoutMs);
      socket.pause();
      void this.#answer(from, request).then((response) => {
        if (state !== 'answering' || this.#closed) return;
        if (response === undefined || response.byteLength > this.maxFrameBytes) return conn.close('no-answer');
        state = 'closed';
        clearTimeout(timer);
        this.#answering.delete(conn);
        const frame = encodeFrameHeader(response);
        this.#stats.streamBytesSent += frame.byteLength;
        socket.end(frame);
      });
    });
  }

  #leavePending(conn: Incoming): void {
    if (!this.#unauthenticated.delete(conn)) return;
    this.#unauthenticatedBytes -= conn.bufferedBytes;
    conn.bufferedBytes = 0;
  }

  /** Close the oldest unauthenticated connection other than `keep`. */
  #evictOldest(keep: Incoming | undefined): void {
    for (const c of this.#unauthenticated) {
      if (c === keep) continue;
      c.close('evicted');
      return;
    }
  }

  #safeAuthenticate(authenticate: StreamAuthenticator, request: Uint8Array): boolean {
    try {
      return authenticate(request);
    } catch {
      this.#stats.handlerErrors++;
      return false;
    }
  }

  #count(reason: IncomingDrop): void {
    const s = this.#stats;
    switch (reason) {
      case 'closed':
        return;
      case 'evicted':
        s.streamsPendingEvicted++;
        break;
      case 'handshake-timeout':
        s.streamsHandshakeTimedOut++;
        break;
      case 'unauthenticated':
        s.streamsUnauthenticated++;
        break;
      case 'busy':
        s.streamsRefusedBusy++;
        break;
      case 'bad-frame':
      case 'no-answer':
        break;
      default: {
        const never: never = reason;
        void never;
      }
    }
    s.streamsDropped++;
  }

  async #answer(from: Address, request: Uint8Array): Promise<Uint8Array | undefined> {
    const handler = this.#streamHandler;
    if (handler === undefined) return undefined;
    try {
      return await handler(from, request);
    } catch {
      this.#stats.handlerErrors++;
      return undefined;
    }
  }
}

function encodeFrameHeader(data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + data.byteLength);
  frame.writeUInt32BE(data.byteLength, 0);
  frame.set(data, FRAME_HEADER_BYTES);
  return frame;
}

/** Accumulates chunks into one length-prefixed frame, refusing oversize lengths before buffering. */
class FrameReader {
  readonly #maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #expected: number | undefined;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Returns the frame once complete, 'too-large' if the header announces more than allowed, else undefined. */
  push(chunk: Buffer): Uint8Array | 'too-large' | undefined {
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
    if (this.#expected === undefined) {
      if (this.#bytes < FRAME_HEADER_BYTES) return undefined;
      const joined = Buffer.concat(this.#chunks);
      this.#expected = joined.readUInt32BE(0);
      if (this.#expected > this.#maxFrameBytes) return 'too-large';
      this.#chunks = [joined.subarray(FRAME_HEADER_BYTES)];
      this.#bytes -= FRAME_HEADER_BYTES;
    }
    if (this.#bytes > this.#expected) return 'too-large';
    if (this.#bytes < this.#expected) return undefined;
    return Buffer.concat(this.#chunks);
  }
}
