/**
 * A `fetch` for Node.js that trusts a given CA (and can show a client
 * certificate): what `HearsayClient` needs to reach a node whose TLS
 * certificate a private CA signed, without touching the process-wide trust
 * store or `NODE_TLS_REJECT_UNAUTHORIZED`. Node's own `fetch` takes no CA
 * without the undici package; this one is `node:http(s)` with a keep-alive
 * agent.
 *
 * A subpath of its own (`@hearsay/client/node`), so the client itself stays
 * free of Node built-ins and runs in browsers (which trust what the system
 * trusts).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import type { FetchLike } from './types.ts';

export interface NodeFetchOptions {
  /** PEM certificates of the CAs to trust for `https://` (instead of Node's bundled ones). */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** PEM certificate and key to show a server that asks for one (mutual TLS). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Keep connections open between requests. Default true; a one-shot command may pass false so nothing holds the process. */
  readonly keepAlive?: boolean;
}

/** Statuses whose answer has no body (the `Response` constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * A `FetchLike` over `node:http` and `node:https` with `options`' CA and
 * client certificate. Bodies are strings or bytes (what `HearsayClient`
 * sends); answers stream. A failure before the answer rejects with a
 * `TypeError('fetch failed')` whose `cause` is the socket error, as `fetch`
 * does; an abort rejects with the signal's reason.
 */
export function nodeFetch(options: NodeFetchOptions = {}): FetchLike {
  const keepAlive = options.keepAlive ?? true;
  const tls = {
    ...(options.ca === undefined ? {} : { ca: options.ca as string | Buffer | Array<string | Buffer> }),
    ...(options.cert === undefined ? {} : { cert: options.cert }),
    ...(options.key === undefined ? {} : { key: options.key }),
  };
  const httpAgent = new HttpAgent({ keepAlive });
  const httpsAgent = new HttpsAgent({ keepAlive, ...tls });
  return (input, init) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input);
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') {
        reject(new TypeError(`fetch failed: ${url.protocol} is not http: or https:`));
        return;
      }
      const signal = init.signal ?? undefined;
      if (signal?.aborted === true) {
        reject(signal.reason);
        return;
      }
      const method = (init.method ?? 'GET').toUpperCase();
      const headers: OutgoingHttpHeaders = {};
      new Headers(init.headers).forEach((value, name) => {
        headers[name] = value;
      });
      const body = bodyBytes(init.body);
      if (body !== undefined) headers['content-length'] = String(body.byteLength);
      const send = secure ? httpsRequest : httpRequest;
      const request = send(url, { method, headers, agent: secure ? httpsAgent : httpAgent });
      const onAbort = (): void => {
        request.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      request.once('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(signal?.aborted === true ? signal.reason : new TypeError('fetch failed', { cause: error }));
      });
      request.once('response', (response: IncomingMessage) => {
        const status = response.statusCode ?? 0;
        const answerHeaders = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (value === undefined) continue;
          for (const one of Array.isArray(value) ? value : [value]) answerHeaders.append(name, one);
        }
        const empty = NULL_BODY_STATUSES.has(status) || method === 'HEAD';
        if (empty) response.resume();
        // After the answer starts, an abort ends the body stream (its reader sees the error).
        response.once('close', () => signal?.removeEventListener('abort', onAbort));
        const stream = empty ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>);
        resolve(new Response(stream, { status, statusText: response.statusMessage ?? '', headers: answerHeaders }));
      });
      request.end(body);
    });
}

function bodyBytes(body: RequestInit['body']): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('nodeFetch sends string, Uint8Array or ArrayBuffer bodies');
}
