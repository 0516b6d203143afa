import { createHash } from 'node:crypto';
import type { BodyBudget } from '@hearsay/service';
import { Hono, type Context } from 'hono';
import { Packr } from 'msgpackr';
import { checkHeaders, DEFAULT_MAX_CLOCK_SKEW_MS, isAuthFailure, type AuthFailureCode } from './auth.ts';
import { toClusterKeys, type ClusterKeyInput } from './cluster-keys.ts';
import { ClusterError } from './errors.ts';
import { decodeRequest, isInternodeType, type InternodeRequest } from './internode-messages.ts';
import { DEFAULT_MAX_NONCES, NonceCache } from './nonce-cache.ts';
import { metricFamily } from './prom-text.ts';
import type { Clock } from '@hearsay/clock';

export const MSGPACK_CONTENT_TYPE = 'application/msgpack';
/**
 * The largest internode request body a node reads (`--internode-max-body-bytes`).
 * Senders keep each request to a quarter of it (`batchBytesOf`), and a
 * responder keeps each answer to the same quarter.
 */
export const DEFAULT_MAX_INTERNODE_BODY_BYTES = 16 * 1024 * 1024;
/** The smallest allowed: a request carrying one record of the largest value (1 MiB by default) must fit with room to spare. */
export const MIN_INTERNODE_BODY_BYTES = 4 * 1024 * 1024;

/** The byte cap of one request a sender makes (and of one answer a responder gives), from the receivers' body limit. */
export function batchBytesOf(maxBodyBytes: number): number {
  return Math.floor(maxBodyBytes / 4);
}

export interface InternodeAppOptions {
  readonly handle: (request: InternodeRequest) => Promise<unknown>;
  readonly clock: Clock;
  /**
   * The cluster key, or the keys of a rotation (`ClusterKeys`: a request
   * signed with any of them passes, read at each request); unset means
   * internode requests are not authenticated (and signed ones are refused).
   */
  readonly clusterKey?: ClusterKeyInput;
  /** This node's id: with a cluster key, requests must be signed for it (a request captured for another node is refused). */
  readonly selfId?: string;
  readonly maxClockSkewMs?: number;
  /** Largest request body read; larger is 413. Default `DEFAULT_MAX_INTERNODE_BODY_BYTES`. */
  readonly maxBodyBytes?: number;
  /** Nonces remembered to refuse replays (see NonceCache). Default 100 000. */
  readonly maxNonces?: number;
  /**
   * The node's request-body budget, shared with public PUTs: an
   * authenticated request takes its body's bytes from it before the body is
   * read (503 `BUSY` when that would pass it) until it is answered.
   */
  readonly load?: BodyBudget;
  /** Where refusals are counted (for /metrics). */
  readonly stats?: InternodeStats;
  /** Called on handler failures that are not the caller's fault (answered 500). */
  readonly onError?: (error: unknown) => void;
}

/** What the internode routes refused, for /metrics (`internodeMetrics`). */
export class InternodeStats {
  readonly refused = new Map<InternodeRefusal, number>();
  nonces: NonceCache | undefined;

  count(reason: InternodeRefusal): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }
}

/** Why an internode request was refused (the `reason` label; append only). */
export const INTERNODE_REFUSALS = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'STALE_REQUEST',
  'REPLAYED',
  'BODY_MISMATCH',
  'LENGTH_REQUIRED',
  'PAYLOAD_TOO_LARGE',
  'BUSY',
  'BAD_REQUEST',
  'CLOCK_SKEW',
] as const;
export type InternodeRefusal = (typeof INTERNODE_REFUSALS)[number];

export function internodeMetrics(stats: InternodeStats): string {
  const lines = [
    ...metricFamily(
      'hearsay_internode_refused_total',
      'counter',
      'Internode requests refused before any work, by reason.',
      INTERNODE_REFUSALS.map((reason) => [`reason="${reason}"`, stats.refused.get(reason) ?? 0] as const),
    ),
  ];
  const nonces = stats.nonces;
  if (nonces !== undefined) {
    lines.push(
      ...metricFamily('hearsay_internode_nonces', 'gauge', 'Nonces of recent internode requests remembered to refuse replays.', [['', nonces.size]]),
      ...metricFamily('hearsay_internode_nonces_max', 'gauge', 'The cap on nonces remembered.', [['', nonces.maxEntries]]),
      ...metricFamily(
        'hearsay_internode_nonces_forgotten_total',
        'counter',
        'Nonces forgotten because the cache was full (requests stamped before the last one are then refused as too old).',
        [['', nonces.forgotten]],
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

export const internodePackr = new Packr({ useRecords: false, moreTypes: false });

const DIGITS = /^[0-9]{1,16}$/;

/**
 * The internode routes, `POST /<type>` with a MessagePack body, as a Hono app
 * to mount under `/internal` (the HTTP app's `internal` option). Errors are
 * JSON `{ error: { code, message } }` like the public API.
 *
 * Order of work, so that a request nobody vouched for costs only its headers:
 * route and `Content-Length` → authentication from the headers (refused with
 * `Connection: close`: its body is never read) → nonce → size (413) → body
 * budget (503 `BUSY`) → the body, read to its declared length and checked
 * against the signed digest → decoded and validated → handled.
 */
export function createInternodeApp(options: InternodeAppOptions): Hono {
  const app = new Hono();
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_INTERNODE_BODY_BYTES;
  const skewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  const keys = toClusterKeys(options.clusterKey);
  const keyed = keys !== undefined;
  if (keyed && (options.selfId === undefined || options.selfId === '')) {
    throw new ClusterError('BAD_CONFIG', 'an internode app with a cluster key needs selfId (requests are signed for their target)');
  }
  const nonces = keyed ? new NonceCache(skewMs, options.maxNonces ?? DEFAULT_MAX_NONCES) : undefined;
  const stats = options.stats;
  if (stats !== undefined) stats.nonces = nonces;
  const load = options.load;

  const refuse = (
    c: Context,
    reason: InternodeRefusal,
    status: 400 | 401 | 403 | 404 | 411 | 413 | 503,
    message: string,
    close = false,
    details: Readonly<Record<string, number>> = {},
  ): Response => {
    stats?.count(reason);
    const headers: Record<string, string> = close ? { connection: 'close' } : {};
    if (status === 503) headers['retry-after'] = '1';
    return c.json({ error: { code: reason, message, ...details } }, status, headers);
  };

  app.post('/:type', async (c) => {
    const type = c.req.param('type');
    if (!isInternodeType(type)) return c.json({ error: { code: 'NOT_FOUND', message: `no internode route ${type}` } }, 404);
    const lengthHeader = c.req.header('content-length');
    if (lengthHeader === undefined || !DIGITS.test(lengthHeader)) {
      return refuse(c, 'LENGTH_REQUIRED', 411, 'internode requests carry a Content-Length', true);
    }
    const declared = Number(lengthHeader);
    const auth = checkHeaders(
      keys?.all,
      { method: 'POST', path: c.req.path, target: options.selfId ?? '', bodyLength: declared },
      { get: (n: string) => c.req.header(n) },
      options.clock.now(),
      skewMs,
    );
    // Not authenticated: answered from the headers, and the connection closes without reading the body.
    if (isAuthFailure(auth)) return refuse(c, auth.code, auth.status, auth.message, true, auth.offsetMs === undefined ? {} : { offsetMs: auth.offsetMs });
    if (nonces !== undefined) {
      const verdict = nonces.admit(auth.nonce, auth.timestampMs, options.clock.now());
      if (verdict === 'replayed') return refuse(c, 'REPLAYED', 401, 'this request was seen before (a replay)', true);
      if (verdict === 'too_old') return refuse(c, 'STALE_REQUEST', 401, 'the request is older than the replay window this node can cover now', true);
    }
    if (declared > maxBody) return refuse(c, 'PAYLOAD_TOO_LARGE', 413, `internode body over ${maxBody} bytes`);
    if (load !== undefined && !load.reserveBody(declared)) {
      return refuse(c, 'BUSY', 503, `too many request bodies in flight (over ${load.maxBodyBytesInFlight} bytes)`);
    }
    try {
      return await serve(c, type, declared, auth.bodySha256);
    } finally {
      load?.releaseBody(declared);
    }
  });

  async function serve(c: Context, type: Parameters<typeof decodeRequest>[0], declared: number, bodySha256: string | undefined): Promise<Response> {
    const body = await readExactly(c.req.raw.body, declared, bodySha256 !== undefined);
    if (body === undefined) return refuse(c, 'BAD_REQUEST', 400, 'the body ended before its Content-Length', true);
    if (bodySha256 !== undefined && body.sha256 !== bodySha256) {
      return refuse(c, 'BODY_MISMATCH', 403, 'the body is not the one that was signed');
    }
    let request: InternodeRequest;
    try {
      request = decodeRequest(type, internodePackr.unpack(body.bytes));
    } catch (e) {
      const message = e instanceof ClusterError ? e.message : 'undecodable MessagePack body';
      return refuse(c, 'BAD_REQUEST', 400, message);
    }
    try {
      const answer = await options.handle(request);
      const bytes = internodePackr.pack(answer);
      return c.body(new Uint8Array(bytes), 200, { 'content-type': MSGPACK_CONTENT_TYPE });
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'STORE_CLOSED') return c.json({ error: { code: 'UNAVAILABLE', message: 'store closed' } }, 503, { 'retry-after': '1' });
      if (code === 'BUSY') return c.json({ error: { code: 'BUSY', message: 'store busy' } }, 503, { 'retry-after': '1' });
      if (code === 'NOT_READY') return c.json({ error: { code: 'NOT_READY', message: (e as Error).message } }, 503, { 'retry-after': '1' });
      options.onError?.(e);
      return c.json({ error: { code: 'INTERNAL', message: 'internode handler failed' } }, 500);
    }
  }

  return app;
}

/**
 * The body, exactly `length` bytes (HTTP framing holds it to the declared
 * length), with its SHA-256 when asked; undefined when it broke off.
 */
async function readExactly(
  stream: ReadableStream<Uint8Array> | null,
  length: number,
  digest: boolean,
): Promise<{ bytes: Uint8Array; sha256: string | undefined } | undefined> {
  const hash = digest ? createHash('sha256') : undefined;
  if (stream === null || length === 0) return { bytes: new Uint8Array(0), sha256: hash?.digest('hex') };
  const out = new Uint8Array(length);
  let at = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.byteLength > length) {
        await reader.cancel().catch(() => undefined);
        return undefined;
      }
      out.set(value, at);
      hash?.update(value);
      at += value.byteLength;
    }
  } catch {
    return undefined;
  }
  if (at !== length) return undefined;
  return { bytes: out, sha256: hash?.digest('hex') };
}

export type { AuthFailureCode };
