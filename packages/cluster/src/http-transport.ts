import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { SIGNATURE_HEADER, signRequest, TIMESTAMP_HEADER } from './auth.ts';
import { ClusterError } from './errors.ts';
import { MSGPACK_CONTENT_TYPE } from './internode-app.ts';
import type { InternodeTransport } from './peer-client.ts';
import type { Timers } from './timers.ts';

export interface HttpTransportOptions {
  /** The peer's HTTP base URL, e.g. `http://127.0.0.1:7001`. */
  readonly baseUrl: string;
  /** Where the internode app is mounted. Default `/internal`. */
  readonly pathPrefix?: string;
  readonly clusterKey?: string;
  readonly timers: Timers;
  /**
   * Injected for tests (e.g. `app.request`). Default: `node:http` over a
   * keep-alive agent per peer (global `fetch` costs several times more CPU
   * per request on Node 20, which showed as low cluster GET throughput).
   */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Sockets kept open to this peer (default transport only). Default 64. */
  readonly maxSockets?: number;
}

/** The answer of one internode request: HTTP status and body. */
interface RawAnswer {
  readonly status: number;
  readonly bytes: Uint8Array;
}

/** An internode transport over HTTP: POST `<base><prefix>/<type>`, MessagePack both ways, signed with the cluster key. */
export function createHttpTransport(options: HttpTransportOptions): InternodeTransport {
  const base = options.baseUrl.replace(/\/+$/, '');
  const prefix = options.pathPrefix ?? '/internal';
  const send =
    options.fetch === undefined ? nodeHttpSender(base, options.maxSockets ?? 64) : fetchSender(base, options.fetch);
  return async (type, body, signal) => {
    const path = `${prefix}/${type}`;
    const headers: Record<string, string> = { 'content-type': MSGPACK_CONTENT_TYPE };
    if (options.clusterKey !== undefined && options.clusterKey !== '') {
      const ts = Math.floor(options.timers.nowMs());
      headers[TIMESTAMP_HEADER] = String(ts);
      headers[SIGNATURE_HEADER] = signRequest(options.clusterKey, 'POST', path, ts, body);
    }
    let answer: RawAnswer;
    try {
      answer = await send(path, headers, body, signal);
    } catch (e) {
      if (signal.aborted && signal.reason instanceof ClusterError) throw signal.reason;
      throw new ClusterError('PEER_UNREACHABLE', `${base}: ${(e as Error).message}`, { cause: e });
    }
    const { status, bytes } = answer;
    if (status === 401 || status === 403) {
      throw new ClusterError('PEER_UNAUTHORIZED', `${base} refused our cluster key (${status}): ${new TextDecoder().decode(bytes).slice(0, 200)}`);
    }
    if (status !== 200) {
      throw new ClusterError('PEER_UNREACHABLE', `${base} answered ${status}: ${new TextDecoder().decode(bytes).slice(0, 200)}`);
    }
    return bytes;
  };
}

type Sender = (path: string, headers: Record<string, string>, body: Uint8Array, signal: AbortSignal) => Promise<RawAnswer>;

function fetchSender(base: string, doFetch: (url: string, init: RequestInit) => Promise<Response>): Sender {
  return async (path, headers, body, signal) => {
    const res = await doFetch(base + path, { method: 'POST', headers, body, signal });
    return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
  };
}

function nodeHttpSender(base: string, maxSockets: number): Sender {
  const url = new URL(base);
  if (url.protocol !== 'http:') throw new ClusterError('BAD_CONFIG', `internode transport supports http:// only, got ${base}`);
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  const basePath = url.pathname.replace(/\/+$/, '');
  return (path, headers, body, signal) =>
    new Promise<RawAnswer>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const req = httpRequest({
        agent,
        host: url.hostname,
        port: url.port === '' ? 80 : Number(url.port),
        method: 'POST',
        path: basePath + path,
        headers: { ...headers, 'content-length': String(body.byteLength) },
      });
      const onAbort = (): void => {
        req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const fail = (e: unknown): void => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      };
      req.on('error', fail);
      req.once('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.once('end', () => {
          signal.removeEventListener('abort', onAbort);
          const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, bytes: new Uint8Array(all.buffer, all.byteOffset, all.byteLength) });
        });
      });
      req.end(body);
    });
}
