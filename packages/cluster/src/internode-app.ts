import { Hono } from 'hono';
import { Packr } from 'msgpackr';
import { checkRequest, DEFAULT_MAX_CLOCK_SKEW_MS, precheckRequest } from './auth.ts';
import { ClusterError } from './errors.ts';
import { decodeRequest, isInternodeType, type InternodeRequest } from './internode-messages.ts';
import type { Timers } from './timers.ts';

export const MSGPACK_CONTENT_TYPE = 'application/msgpack';
export const DEFAULT_MAX_INTERNODE_BODY_BYTES = 64 * 1024 * 1024;

export interface InternodeAppOptions {
  readonly handle: (request: InternodeRequest) => Promise<unknown>;
  readonly timers: Timers;
  /** The cluster key; unset means internode requests are not authenticated (and signed ones are refused). */
  readonly clusterKey?: string;
  readonly maxClockSkewMs?: number;
  readonly maxBodyBytes?: number;
  /** Called on handler failures that are not the caller's fault (answered 500). */
  readonly onError?: (error: unknown) => void;
}

export const internodePackr = new Packr({ useRecords: false, moreTypes: false });

/**
 * The internode routes, `POST /<type>` with a MessagePack body, as a Hono app
 * to mount under `/internal` (the HTTP app's `internal` option). Requests are
 * authenticated before they are decoded. Errors are JSON
 * `{ error: { code, message } }` like the public API.
 */
export function createInternodeApp(options: InternodeAppOptions): Hono {
  const app = new Hono();
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_INTERNODE_BODY_BYTES;
  app.post('/:type', async (c) => {
    const type = c.req.param('type');
    if (!isInternodeType(type)) return c.json({ error: { code: 'NOT_FOUND', message: `no internode route ${type}` } }, 404);
    const declared = Number(c.req.header('content-length') ?? '0');
    if (declared > maxBody) return c.json({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'internode body too large' } }, 413);
    const headers = { get: (n: string) => c.req.header(n) };
    const early = precheckRequest(options.clusterKey, headers, options.timers.nowMs(), options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS);
    if (early !== undefined) return c.json({ error: { code: early.code, message: early.message } }, early.status);
    const body = await readBounded(c.req.raw.body, maxBody);
    if (body === undefined) return c.json({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'internode body too large' } }, 413);
    const denied = checkRequest(
      options.clusterKey,
      'POST',
      c.req.path,
      headers,
      body,
      options.timers.nowMs(),
      options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS,
    );
    if (denied !== undefined) return c.json({ error: { code: denied.code, message: denied.message } }, denied.status);
    let request: InternodeRequest;
    try {
      request = decodeRequest(type, internodePackr.unpack(body));
    } catch (e) {
      const message = e instanceof ClusterError ? e.message : 'undecodable MessagePack body';
      return c.json({ error: { code: 'BAD_REQUEST', message } }, 400);
    }
    try {
      const answer = await options.handle(request);
      const bytes = internodePackr.pack(answer);
      return c.body(new Uint8Array(bytes), 200, { 'content-type': MSGPACK_CONTENT_TYPE });
    } catch (e) {
      options.onError?.(e);
      const code = (e as { code?: unknown }).code;
      if (code === 'STORE_CLOSED') return c.json({ error: { code: 'UNAVAILABLE', message: 'store closed' } }, 503);
      if (code === 'BUSY') return c.json({ error: { code: 'BUSY', message: 'store busy' } }, 503);
      return c.json({ error: { code: 'INTERNAL', message: 'internode handler failed' } }, 500);
    }
  });
  return app;
}

/** The whole body, or undefined as soon as it passes `max` bytes (chunked bodies too; nothing past the bound is kept). */
async function readBounded(stream: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array | undefined> {
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const ch of chunks) {
    out.set(ch, at);
    at += ch.byteLength;
  }
  return out;
}
