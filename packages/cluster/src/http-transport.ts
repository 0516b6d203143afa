import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { authHeaders } from './auth.ts';
import { toClusterKeys, type ClusterKeyInput } from './cluster-keys.ts';
import { ClusterError } from './errors.ts';
import { DEFAULT_MAX_INTERNODE_BODY_BYTES, MSGPACK_CONTENT_TYPE } from './internode-app.ts';
import type { InternodeTransport } from './peer-client.ts';
import type { Clock } from '@hearsay/clock';

export interface HttpTransportOptions {
  /** The peer's HTTP base URL, e.g. `http://127.0.0.1:7001`. */
  readonly baseUrl: string;
  /** Where the internode app is mounted. Default `/internal`. */
  readonly pathPrefix?: string;
  /** The cluster key, or the keys of a rotation (`ClusterKeys`: requests are signed with the primary in force when sent). */
  readonly clusterKey?: ClusterKeyInput;
  /** For an `https://` peer: how to verify it and what certificate to show it (default transport only). */
  readonly tls?: InternodeTls;
  /** The peer's member id, signed into every request (required with a cluster key): the peer refuses requests signed for another node. */
  readonly targetId?: string;
  readonly clock: Clock;
  /**
   * Injected for tests (e.g. `app.request`). Default: `node:http` over a
   * keep-alive agent per peer (global `fetch` costs several times more CPU
   * per request on Node 20, which showed as low cluster GET throughput).
   */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Sockets kept open to this peer (default transport only). Default 64. */
  readonly maxSockets?: number;
  /** A larger answer fails with `PEER_BAD_RESPONSE` and is not read further. Default `DEFAULT_MAX_INTERNODE_BODY_BYTES`. */
  readonly maxResponseBytes?: number;
}

/**
 * TLS to peers. `secureContext()` is asked for each new connection, so
 * certificates reloaded on disk are used from the next connection on:
 * kept-alive connections finish on the context they opened with.
 */
export interface InternodeTls {
  /** Holds the CA that signs peers' certificates, and this node's certificate and key (shown when a peer asks for one). */
  secureContext(): SecureContext;
}

/** The answer of one internode request: HTTP status and body. */
interface RawAnswer {
  readonly status: number;
  readonly bytes: Uint8Array;
}

/**
 * A failure to send a request on a kept-alive connection the peer had
 * already closed (the request never reached it): safe to send once more on
 * a fresh connection.
 */
class StaleConnection extends Error {
  override readonly name = 'StaleConnection';
}

/**
 * An internode transport over HTTP: POST `<base><prefix>/<type>`, MessagePack
 * both ways, signed with the cluster key for `targetId` (a fresh nonce per
 * attempt). Every failure, on the request, its socket or the response,
 * rejects the call with a `ClusterError`; none is left to reach `uncaught`.
 * A request that finds its kept-alive connection closed by the peer is sent
 * again once on a new one (every internode request is idempotent).
 */
export function createHttpTransport(options: HttpTransportOptions): InternodeTransport {
  const base = options.baseUrl.replace(/\/+$/, '');
  const prefix = options.pathPrefix ?? '/internal';
  const key = toClusterKeys(options.clusterKey);
  if (key !== undefined && (options.targetId === undefined || options.targetId === '')) {
    throw new ClusterError('BAD_CONFIG', 'an internode transport with a cluster key needs the targetId it signs for');
  }
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_INTERNODE_BODY_BYTES;
  const send =
    options.fetch === undefined ? nodeHttpSender(base, options.maxSockets ?? 64, maxResponseBytes, options.tls) : fetchSender(base, options.fetch);
  return async (type, body, signal) => {
    const path = `${prefix}/${type}`;
    const headersOf = (): Record<string, string> => {
      const headers: Record<string, string> = { 'content-type': MSGPACK_CONTENT_TYPE, 'content-length': String(body.byteLength) };
      return key === undefined ? headers : { ...headers, ...authHeaders(key.primary, 'POST', path, options.targetId!, options.clock.now(), body) };
    };
    let answer: RawAnswer;
    try {
      try {
        answer = await send(path, headersOf(), body, signal);
      } catch (e) {
        if (!(e instanceof StaleConnection) || signal.aborted) throw e;
        answer = await send(path, headersOf(), body, signal);
      }
    } catch (e) {
      if (signal.aborted && signal.reason instanceof ClusterError) throw signal.reason;
      if (e instanceof ClusterError) throw e;
      throw new ClusterError('PEER_UNREACHABLE', `${base}: ${(e as Error).message}`, { cause: e });
    }
    const { status, bytes } = answer;
    const said = (): string => new TextDecoder().decode(bytes.subarray(0, 200));
    if (status === 401 || status === 403) {
      const skew = clockSkewOf(bytes);
      if (skew !== undefined) {
        throw new ClusterError(
          'PEER_CLOCK_SKEW',
          `${base} refused our request for clock skew, not for our key: its clock is ${Math.abs(skew)} ms ${skew > 0 ? 'ahead of' : 'behind'} ours, ` +
            'more than internode requests allow; check the clocks (NTP) of both nodes',
        );
      }
      throw new ClusterError('PEER_UNAUTHORIZED', `${base} refused our cluster key (${status}): ${said()}`);
    }
    if (status === 503) throw new ClusterError('PEER_OVERLOADED', `${base} is busy (503): ${said()}`);
    if (status !== 200) throw new ClusterError('PEER_UNREACHABLE', `${base} answered ${status}: ${said()}`);
    return bytes;
  };
}

/** The peer's clock minus ours from its CLOCK_SKEW refusal (`{ error: { code, offsetMs } }`), else undefined. */
function clockSkewOf(bytes: Uint8Array): number | undefined {
  try {
    const e = (JSON.parse(new TextDecoder().decode(bytes)) as { error?: { code?: unknown; offsetMs?: unknown } }).error;
    return e?.code === 'CLOCK_SKEW' && typeof e.offsetMs === 'number' ? e.offsetMs : undefined;
  } catch {
    return undefined;
  }
}

type Sender = (path: string, headers: Record<string, string>, body: Uint8Array, signal: AbortSignal) => Promise<RawAnswer>;

function fetchSender(base: string, doFetch: (url: string, init: RequestInit) => Promise<Response>): Sender {
  return async (path, headers, body, signal) => {
    const res = await doFetch(base + path, { method: 'POST', headers, body, signal });
    return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
  };
}

/** Errors that mean a kept-alive connection was closed by the peer before our request got there. */
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Sockets of the agent that already carry our error listener. Node attaches
 * its own only while a request owns the socket; between the end of a
 * response and the end of writing a request body (a peer that answered
 * early), or while a socket changes hands, an error on it would otherwise
 * be unhandled and kill the process (`write EPIPE` at 250 concurrent 1 MiB
 * writes, issue 17).
 */
const guardedSockets = new WeakSet<Socket>();
function ignoreSocketError(): void {
  // The request or response that owns the socket reports the failure; a free socket is dropped by the agent.
}

function nodeHttpSender(base: string, maxSockets: number, maxResponseBytes: number, tls: InternodeTls | undefined): Sender {
  const url = new URL(base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ClusterError('BAD_CONFIG', `internode transport supports http:// and https://, got ${base}`);
  const secure = url.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets };
  const agent = secure ? new HttpsAgent(agentOptions) : new Agent(agentOptions);
  const send = secure ? httpsRequest : httpRequest;
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  // URL keeps the brackets of an IPv6 host; a socket wants the address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const basePath = url.pathname.replace(/\/+$/, '');
  return (path, headers, body, signal) =>
    new Promise<RawAnswer>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      let settled = false;
      let req: ClientRequest;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => {
        req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      try {
        const requestOptions: RequestOptions & { secureContext?: SecureContext } = { agent, host, port, method: 'POST', path: basePath + path, headers };
        if (secure && tls !== undefined) requestOptions.secureContext = tls.secureContext();
        req = send(requestOptions);
      } catch (e) {
        reject(e);
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      let answered = false;
      req.on('socket', (socket: Socket) => {
        if (guardedSockets.has(socket)) return;
        guardedSockets.add(socket);
        socket.on('error', ignoreSocketError);
      });
      // Stays attached after the answer: a peer that answered before reading the whole body may reset the socket later.
      req.on('error', (e: NodeJS.ErrnoException) => {
        settle(() => reject(!answered && req.reusedSocket && e.code !== undefined && STALE_CODES.has(e.code) ? new StaleConnection(e.message, { cause: e }) : e));
      });
      req.once('response', (res: IncomingMessage) => {
        answered = true;
        const declared = Number(res.headers['content-length']);
        if (declared > maxResponseBytes) {
          res.resume();
          req.destroy();
          settle(() => reject(new ClusterError('PEER_BAD_RESPONSE', `${base} answered ${declared} bytes, over ${maxResponseBytes}`)));
          return;
        }
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (c: Buffer) => {
          received += c.byteLength;
          if (received > maxResponseBytes) {
            req.destroy();
            settle(() => reject(new ClusterError('PEER_BAD_RESPONSE', `${base} answered more than ${maxResponseBytes} bytes`)));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (e) => settle(() => reject(e)));
        res.once('aborted', () => settle(() => reject(new Error('the answer broke off'))));
        res.once('end', () => {
          const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          settle(() => resolve({ status: res.statusCode ?? 0, bytes: new Uint8Array(all.buffer, all.byteOffset, all.byteLength) }));
        });
      });
      req.end(body);
    });
}
