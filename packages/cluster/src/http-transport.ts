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
  /** Injected for tests (e.g. `app.request`); default global fetch. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** An internode transport over HTTP: POST `<base><prefix>/<type>`, MessagePack both ways, signed with the cluster key. */
export function createHttpTransport(options: HttpTransportOptions): InternodeTransport {
  const base = options.baseUrl.replace(/\/+$/, '');
  const prefix = options.pathPrefix ?? '/internal';
  const doFetch = options.fetch ?? ((url: string, init: RequestInit) => fetch(url, init));
  return async (type, body, signal) => {
    const path = `${prefix}/${type}`;
    const headers: Record<string, string> = { 'content-type': MSGPACK_CONTENT_TYPE };
    if (options.clusterKey !== undefined && options.clusterKey !== '') {
      const ts = Math.floor(options.timers.nowMs());
      headers[TIMESTAMP_HEADER] = String(ts);
      headers[SIGNATURE_HEADER] = signRequest(options.clusterKey, 'POST', path, ts, body);
    }
    let res: Response;
    try {
      res = await doFetch(base + path, { method: 'POST', headers, body, signal });
    } catch (e) {
      if (signal.aborted && signal.reason instanceof ClusterError) throw signal.reason;
      throw new ClusterError('PEER_UNREACHABLE', `${base}: ${(e as Error).message}`, { cause: e });
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.status === 401 || res.status === 403) {
      throw new ClusterError('PEER_UNAUTHORIZED', `${base} refused our cluster key (${res.status}): ${new TextDecoder().decode(bytes).slice(0, 200)}`);
    }
    if (res.status !== 200) {
      throw new ClusterError('PEER_UNREACHABLE', `${base} answered ${res.status}: ${new TextDecoder().decode(bytes).slice(0, 200)}`);
    }
    return bytes;
  };
}
