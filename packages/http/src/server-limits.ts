/**
 * Bounds on what a client (or an attacker) can hold on a node's HTTP server:
 * how many connections are open at once, and how long a connection may sit
 * idle, take to send its request head, take to send its whole request, or
 * stall with no byte moving. Node's defaults (no connection cap, a request
 * may take 300 s, checked every 30 s) let a few thousand slow connections
 * stop a node serving anyone.
 *
 * At the connection cap a new connection is still served: the oldest
 * connection that has not sent a whole request head yet, else the one idle
 * longest between requests, is closed to make room. Only when every slot
 * has a request in progress is the new connection refused (503 `BUSY`).
 *
 * Keep-alive: the server advertises `Keep-Alive: timeout=<idle s>` but
 * closes an idle connection only `KEEP_ALIVE_GRACE_MS` later. A client reuses
 * a connection until about a second before the advertised timeout (undici,
 * Node's Agent); a client whose event loop stalled longer than that could
 * send its request just as the server closed the connection, and see a reset
 * instead of an answer. The grace covers such a stall (Node 24 added
 * `keepAliveTimeoutBuffer` for the same reason).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { MAX_DISCARD_BYTES } from './body.ts';
import type { LoadLimits } from './load-limits.ts';
import { rawErrorResponse } from './server-guards.ts';

export interface ServerLimits {
  /** Connections open at once (`--http-max-connections`). */
  readonly maxConnections: number;
  /** How long an idle keep-alive connection stays open, as advertised in `Keep-Alive` (`--http-idle-timeout-ms`). */
  readonly idleTimeoutMs: number;
  /** Time to receive a request's head (`--http-headers-timeout-ms`); 408 after. */
  readonly headersTimeoutMs: number;
  /** Time to receive a whole request, head and body (`--http-receive-timeout-ms`); 408 after. */
  readonly receiveTimeoutMs: number;
  /** A connection on which no byte moves either way for this long is closed (`--http-stall-timeout-ms`). */
  readonly stallTimeoutMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  maxConnections: 1024,
  idleTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  receiveTimeoutMs: 30_000,
  stallTimeoutMs: 60_000,
};

/** How much longer than advertised an idle keep-alive connection really stays open. */
export const KEEP_ALIVE_GRACE_MS = 2_000;
/** How often Node checks the head and receive timeouts (its default is 30 s, which made them up to 30 s late). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/** Throws a RangeError naming the first setting out of range. */
export function validateServerLimits(limits: ServerLimits): void {
  for (const [name, min] of [
    ['maxConnections', 1],
    ['idleTimeoutMs', 1000],
    ['headersTimeoutMs', 1000],
    ['receiveTimeoutMs', 1000],
    ['stallTimeoutMs', 1000],
  ] as const) {
    const value = limits[name];
    if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be a whole number of at least ${min}`);
  }
  if (limits.headersTimeoutMs > limits.receiveTimeoutMs) {
    throw new RangeError('headersTimeoutMs must not exceed receiveTimeoutMs (the head is part of the request)');
  }
}

interface Tracked {
  readonly socket: Socket;
  /** Requests on this connection whose response has not closed yet. */
  active: number;
}

/** The connection a response belongs to, kept on the response so its listeners need no closure per request. */
const TRACKED: unique symbol = Symbol('hearsay.tracked');
type TrackedResponse = ServerResponse & { [TRACKED]?: Tracked };

function onResponseFinish(this: ServerResponse): void {
  // Node reads and drops a body nobody read once the answer is out (so the client sees it): at most MAX_DISCARD_BYTES.
  if (!this.req.complete) boundDiscard(this.req);
}

export interface ServerLimiter {
  readonly limits: ServerLimits;
  /** Connections open now. */
  readonly connections: number;
}

/**
 * Applies `limits` to `server` (call before `listen`); refusals and
 * evictions are counted in `load`. Installs a first `request` listener that
 * sets the advertised keep-alive timeout, so it runs before any listener
 * that answers synchronously.
 */
export function limitServer(server: Server, limits: ServerLimits, load: LoadLimits): ServerLimiter {
  validateServerLimits(limits);
  server.keepAliveTimeout = limits.idleTimeoutMs + KEEP_ALIVE_GRACE_MS;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.receiveTimeoutMs;
  server.timeout = limits.stallTimeoutMs;
  // Read by Node when the server starts listening.
  (server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = TIMEOUT_CHECK_INTERVAL_MS;
  load.maxConnections = limits.maxConnections;

  const tracked = new Map<Socket, Tracked>();
  // Connections that may be closed to make room, oldest first: no request head yet, and idle between requests.
  const waiting = new Set<Socket>();
  const idle = new Set<Socket>();

  const evictOne = (): boolean => {
    for (const [set, reason] of [[waiting, 'no_request_yet'], [idle, 'idle']] as const) {
      const oldest = set.values().next();
      if (oldest.done === true) continue;
      const socket = oldest.value;
      set.delete(socket);
      load.evicted(reason);
      socket.destroy();
      return true;
    }
    return false;
  };

  server.on('connection', (socket: Socket) => {
    if (tracked.size >= limits.maxConnections && !evictOne()) {
      load.refused('connections');
      socket.on('error', () => socket.destroy());
      socket.end(rawErrorResponse('BUSY', `all ${limits.maxConnections} connections are busy; retry later`, 'Retry-After: 1\r\n'));
      socket.destroySoon();
      return;
    }
    tracked.set(socket, { socket, active: 0 });
    waiting.add(socket);
    load.connections = tracked.size;
    socket.once('close', () => {
      tracked.delete(socket);
      waiting.delete(socket);
      idle.delete(socket);
      load.connections = tracked.size;
    });
  });

  // Node closes a socket that stalls past server.timeout only while nothing listens here; counted, then closed the same way.
  server.on('timeout', (socket: Socket) => {
    const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (response === null || response === undefined) {
      socket.destroy(); // idle between requests: the keep-alive timeout
      return;
    }
    // A response that listens for its own timeout (the repair stream) stays open.
    if (response.listenerCount('timeout') > 0) return;
    load.refused('stall_timeout');
    socket.destroy();
  });

  function onResponseClose(this: TrackedResponse): void {
    const entry = this[TRACKED]!;
    entry.active -= 1;
    const socket = entry.socket;
    if (entry.active === 0 && !socket.destroyed && tracked.has(socket)) idle.add(socket);
  }

  const advertisedMs = limits.idleTimeoutMs;
  server.prependListener('request', (request: IncomingMessage, response: TrackedResponse) => {
    // The Keep-Alive header Node writes says this; the socket's real idle timer is server.keepAliveTimeout.
    (response as unknown as { _keepAliveTimeout: number })._keepAliveTimeout = advertisedMs;
    const socket = tcpSocketOf(request.socket);
    const entry = tracked.get(socket);
    if (entry === undefined) return;
    entry.active += 1;
    waiting.delete(socket);
    idle.delete(socket);
    response[TRACKED] = entry;
    // on, not once: each fires once per response, and once would allocate a wrapper per request.
    response.on('finish', onResponseFinish);
    response.on('close', onResponseClose);
  });

  return {
    limits,
    get connections() {
      return tracked.size;
    },
  };
}

/**
 * The TCP connection a request came on, as 'connection' reported it: over
 * HTTPS the request's socket is the TLS socket wrapped around it (Node keeps
 * the TCP one as `_parent`).
 */
function tcpSocketOf(socket: Socket): Socket {
  return (socket as Socket & { _parent?: Socket | null })._parent ?? socket;
}

function boundDiscard(request: IncomingMessage): void {
  let discarded = 0;
  const onData = (chunk: Buffer): void => {
    discarded += chunk.byteLength;
    if (discarded > MAX_DISCARD_BYTES) request.socket.destroy();
  };
  request.on('data', onData);
  request.once('end', () => request.off('data', onData));
}
