/**
 * The Hono app of a node: the public HTTP API v1 (docs/api.md, a contract),
 * `/metrics`, the OpenAPI document, and a mount point for the cluster's
 * internal routes. Every input is validated here; the `KvService` behind it
 * sees only well-formed keys, values within limits and parsed options.
 */
import { Hono, type Context } from 'hono';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import { createAccessControl, type Access, type TokenVerifier } from './access.ts';
import { readBodyWithin } from './body.ts';
import type { LoadLimits } from './load-limits.ts';
import { errorResponse, jsonResponse, type HttpErrorCode } from './errors.ts';
import { formatEtag, noneMatchHits, parseEtagList, versionFromOpaque } from './etag.ts';
import { createHttpMetrics, type RouteLabel } from './metrics.ts';
import { openApiDocument } from './openapi.ts';
import { keyFromUrl, parseQuery } from './request-target.ts';
import { isServiceError, type Consistency, type KvService, type PutOptions, type RepairLine } from '@hearsay/service';
import { compareVersions, versionToString, type StoredRecord, type Version } from '@hearsay/storage';
import type { Principal } from './tokens.ts';

export interface HttpLimits {
  /** UTF-8 bytes of a key (and of a list `prefix`). */
  readonly maxKeyBytes: number;
  /** Bytes of a value; a larger PUT is refused with 413. */
  readonly maxValueBytes: number;
  readonly defaultListLimit: number;
  readonly maxListLimit: number;
  /** Bytes of a stored `Content-Type`. */
  readonly maxContentTypeBytes: number;
  /** Characters of a list `cursor`. */
  readonly maxCursorLength: number;
}

export const DEFAULT_LIMITS: HttpLimits = {
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  defaultListLimit: 100,
  maxListLimit: 1000,
  maxContentTypeBytes: 256,
  maxCursorLength: 4096,
};

/** pino-compatible: `logger.error({ err }, 'message')`. */
export interface HttpLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

export interface AppOptions {
  readonly service: KvService;
  readonly limits?: Partial<HttpLimits>;
  /** Where the app registers its metrics; a fresh registry when left out. */
  readonly registry?: Registry;
  /** Routes mounted under `/internal` (the cluster's internode API). */
  readonly internal?: Hono;
  /** Consistency of a KV request without `?consistency=`; `quorum` by default. */
  readonly defaultConsistency?: Consistency;
  /** Told about unexpected errors (answered with 500 `INTERNAL`). */
  readonly logger?: HttpLogger;
  /**
   * Also expose prom-client's process metrics (CPU, memory, event-loop lag,
   * GC) under the `hearsay_` prefix. Off by default: it samples the event
   * loop, which tests and embedders may not want. A node turns it on.
   */
  readonly processMetrics?: boolean;
  /**
   * The node's load limits: a PUT takes its body's bytes from the budget
   * before reading it (503 `BUSY` with `Retry-After` when it would pass it),
   * BUSY answers are counted, `/v1/health` is not ok while the node sheds
   * load, and the limit metrics are served. None: no body budget.
   */
  readonly load?: LoadLimits;
  /**
   * More reasons `/v1/health` may not be ok (e.g. the data dir's disk is
   * full): each returns why, or undefined when all is well. Checked after
   * the service's own health.
   */
  readonly healthChecks?: readonly HealthCheck[];
  /**
   * Checks client tokens (`Authorization: Bearer`): every route but
   * `/v1/health`, `/v1/openapi.json` and OPTIONS then needs a token with the
   * route's scope (access.ts). None: every client may do everything, and
   * `/v1/health` says so.
   */
  readonly auth?: TokenVerifier;
  /** With `auth`: serve `/metrics` without a token (for a scraper on a trusted network). */
  readonly openMetrics?: boolean;
  /** How the node is protected beyond client tokens, shown in `/v1/health` (`security`) with warnings. */
  readonly security?: SecurityReport;
}

/** What `/v1/health` says of the node's protection besides client tokens. */
export interface SecurityReport {
  /** The HTTP API is served over TLS. */
  readonly tls: boolean;
  /** `cluster-key`: internode requests are authenticated; `closed`: no key and no internode API; `insecure`: open to anyone. */
  readonly internode: 'cluster-key' | 'closed' | 'insecure';
}

/** A reason the node cannot serve, or undefined. Must answer at once (cache anything slow). */
export type HealthCheck = () => string | undefined;

export interface HearsayAppControls {
  /**
   * While draining, `/v1/health` answers 503 `NOT_SERVING` and every answer
   * carries `Connection: close`; requests are still served.
   */
  setDraining(draining: boolean): void;
  readonly draining: boolean;
  readonly registry: Registry;
  readonly limits: HttpLimits;
}

export type HearsayApp = Hono & HearsayAppControls;

const KV_ALLOW = 'GET, HEAD, PUT, DELETE, OPTIONS';
const READ_ALLOW = 'GET, HEAD, OPTIONS';
const POST_ALLOW = 'POST, OPTIONS';

const KV_PARAMS: ReadonlySet<string> = new Set(['consistency']);
const LIST_PARAMS: ReadonlySet<string> = new Set(['prefix', 'limit', 'cursor', 'consistency']);
const NO_PARAMS: ReadonlySet<string> = new Set();
const ABORT_PARAMS: ReadonlySet<string> = new Set(['abort']);

const OCTET_STREAM = 'application/octet-stream';
const NDJSON = 'application/x-ndjson';
/**
 * RFC 9110 media-type: type "/" subtype *( OWS ";" OWS parameter ), in
 * printable ASCII (the store keeps 1 to 256 such characters; tabs are left out).
 */
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?: *; *(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+=(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[ !#-[\]-~]|\\[ -~])*"))?)* *$/;
const DIGITS = /^\d{1,7}$/;
const DIGITS_16 = /^\d{1,16}$/;

function methodNotAllowed(method: string, allow: string): Response {
  return errorResponse('METHOD_NOT_ALLOWED', `${method.slice(0, 32)} is not allowed here; allowed: ${allow}`, undefined, { allow });
}

function optionsResponse(allow: string): Response {
  return new Response(null, { status: 204, headers: { allow } });
}

/** The string, number, boolean and null fields of a health report, besides `ok` and `reason`. */
function plainFields(report: Record<string, unknown>): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, value] of Object.entries(report)) {
    if (name === 'ok' || name === 'reason' || name === 'code' || name === 'message') continue;
    if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[name] = value;
  }
  return out;
}

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly response: Response };

export function createApp(options: AppOptions): HearsayApp {
  const service = options.service;
  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const defaultConsistency = options.defaultConsistency ?? 'quorum';
  const registry = options.registry ?? new Registry();
  const metrics = createHttpMetrics(registry);
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'hearsay_' });
  const logger = options.logger;
  const load = options.load;
  load?.register(registry);
  const healthChecks = options.healthChecks ?? [];
  const openApiBody = JSON.stringify(openApiDocument(limits));
  let draining = false;
  const authRefusals = new Counter({
    name: 'hearsay_http_auth_refusals_total',
    help: 'Requests refused before any work for want of a valid token (unauthenticated, 401) or of its scope or key prefix (forbidden, 403).',
    labelNames: ['reason'],
    registers: [registry],
  });
  const access = createAccessControl(options.auth, {
    ...(options.openMetrics === undefined ? {} : { openMetrics: options.openMetrics }),
    onRefusal: (why) => authRefusals.inc({ reason: why }),
  });
  const securityFields = securityOf(options);

  function failure(error: unknown, route: RouteLabel): Response {
    if (isServiceError(error)) {
      if (error.code === 'BUSY') load?.refused('busy');
      return errorResponse(error.code, error.message, error.details);
    }
    logger?.error({ err: error, route }, 'unexpected error while answering a request');
    return errorResponse('INTERNAL', 'internal error; the node logged it');
  }

  /**
   * Wraps a route's handler: errors become answers, and every answer is
   * counted and timed. A handler that answers synchronously is answered
   * synchronously, so @hono/node-server can write the response at once.
   */
  function timed(route: RouteLabel, handler: (c: Context) => Response | Promise<Response>) {
    return (c: Context): Response | Promise<Response> => {
      const startMs = performance.now();
      let result: Response | Promise<Response>;
      try {
        result = handler(c);
      } catch (error) {
        return answered(route, c, startMs, failure(error, route));
      }
      if (!(result instanceof Promise)) return answered(route, c, startMs, result);
      return result.then(
        (response) => answered(route, c, startMs, response),
        (error: unknown) => answered(route, c, startMs, failure(error, route)),
      );
    };
  }

  function answered(route: RouteLabel, c: Context, startMs: number, response: Response): Response {
    metrics.record(route, c.req.method, response.status, (performance.now() - startMs) / 1000);
    if (draining) response.headers.set('connection', 'close');
    return response;
  }

  function consistencyOf(params: ReadonlyMap<string, string>): Parsed<Consistency> {
    const value = params.get('consistency');
    if (value === undefined) return { ok: true, value: defaultConsistency };
    if (value === 'one' || value === 'quorum' || value === 'all') return { ok: true, value };
    return {
      ok: false,
      response: errorResponse('INVALID_PARAMETER', `consistency must be one, quorum or all, not ${JSON.stringify(value.slice(0, 32))}`),
    };
  }

  /** `If-Match`: absent, `*`, or one of our ETags; null answer means "can never match" (412). */
  function ifMatchOf(header: string | null): Parsed<Version | '*' | undefined | null> {
    if (header === null) return { ok: true, value: undefined };
    const list = parseEtagList(header);
    if (list === null) return { ok: false, response: errorResponse('INVALID_HEADER', 'If-Match is not * or a quoted entity tag') };
    if (list === '*') return { ok: true, value: '*' };
    if (list.length !== 1) return { ok: false, response: errorResponse('INVALID_HEADER', 'If-Match takes * or exactly one entity tag') };
    const tag = list[0]!;
    // Strong comparison: a weak tag or one that is not a version of ours matches nothing.
    if (tag.weak) return { ok: true, value: null };
    return { ok: true, value: versionFromOpaque(tag.opaque) ?? null };
  }

  function ifMatchHolds(ifMatch: Version | '*' | null, current: Version): boolean {
    if (ifMatch === '*') return true;
    return ifMatch !== null && compareVersions(ifMatch, current) === 0;
  }

  const preconditionFailed = (what: string): Response => errorResponse('PRECONDITION_FAILED', what);

  function keyAndParams(url: string): Parsed<{ key: string; consistency: Consistency }> {
    const key = keyFromUrl(url, limits.maxKeyBytes);
    if (!key.ok) return { ok: false, response: errorResponse(key.code, key.message) };
    const query = parseQuery(url, KV_PARAMS);
    if (!query.ok) return { ok: false, response: errorResponse(query.code, query.message) };
    const consistency = consistencyOf(query.params);
    if (!consistency.ok) return consistency;
    return { ok: true, value: { key: key.key, consistency: consistency.value } };
  }

  /**
   * GET and HEAD of a key. Answered synchronously when the service can read
   * the key without waiting (`KvService.getNow`), else after `get`.
   */
  function getValue(request: Request, principal: Principal): Response | Promise<Response> {
    const target = keyAndParams(request.url);
    if (!target.ok) return target.response;
    const denied = access.checkKey(request, principal, target.value.key, 'read');
    if (denied !== undefined) return denied;
    const noneMatchHeader = request.headers.get('if-none-match');
    const noneMatch = noneMatchHeader === null ? null : parseEtagList(noneMatchHeader);
    if (noneMatchHeader !== null && noneMatch === null) return errorResponse('INVALID_HEADER', 'If-None-Match is not * or a list of quoted entity tags');
    const ifMatch = ifMatchOf(request.headers.get('if-match'));
    if (!ifMatch.ok) return ifMatch.response;
    const options = { consistency: target.value.consistency };
    const now = service.getNow === undefined ? null : service.getNow(target.value.key, options);
    if (now !== null) return valueResponse(request, now, noneMatch, ifMatch.value);
    return service.get(target.value.key, options).then((record) => valueResponse(request, record, noneMatch, ifMatch.value));
  }

  function valueResponse(
    request: Request,
    record: StoredRecord | undefined,
    noneMatch: ReturnType<typeof parseEtagList>,
    ifMatch: Version | '*' | undefined | null,
  ): Response {
    // RFC 9110 §13.2.2: If-Match is evaluated first, so it fails with 412 also on a missing key.
    if (ifMatch !== undefined && (record === undefined || !ifMatchHolds(ifMatch, record.version))) {
      return preconditionFailed('If-Match does not match the current version');
    }
    if (record === undefined) return errorResponse('NOT_FOUND', 'no value under this key');
    const opaque = versionToString(record.version);
    const etag = `"${opaque}"`;
    if (noneMatch !== null && noneMatchHits(noneMatch, opaque)) return new Response(null, { status: 304, headers: { etag } });
    const contentType = record.contentType ?? OCTET_STREAM;
    // A GET's Content-Length is set by the server from the body (cheaper than a header to validate);
    // HEAD loses the body on the way out, so it says the length itself.
    const headers =
      request.method === 'HEAD'
        ? { etag, 'content-type': contentType, 'content-length': String(record.value.byteLength) }
        : { etag, 'content-type': contentType };
    return new Response(record.value, { status: 200, headers });
  }

  async function putValue(request: Request, principal: Principal): Promise<Response> {
    const target = keyAndParams(request.url);
    if (!target.ok) return target.response;
    const denied = access.checkKey(request, principal, target.value.key, 'write');
    if (denied !== undefined) return denied;
    const headers = request.headers;
    const encoding = headers.get('content-encoding');
    if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
      return errorResponse('UNSUPPORTED_CONTENT_ENCODING', 'values are stored as sent; Content-Encoding must be absent or identity');
    }
    const contentType = headers.get('content-type');
    if (contentType !== null && (contentType.length > limits.maxContentTypeBytes || !MEDIA_TYPE.test(contentType))) {
      return errorResponse('UNSUPPORTED_MEDIA_TYPE', `Content-Type must be a media type (type/subtype; params) of at most ${limits.maxContentTypeBytes} bytes`);
    }
    const ifMatch = ifMatchOf(headers.get('if-match'));
    if (!ifMatch.ok) return ifMatch.response;
    const noneMatchHeader = headers.get('if-none-match');
    if (noneMatchHeader !== null && noneMatchHeader.trim() !== '*') {
      return errorResponse('INVALID_HEADER', 'a write takes only If-None-Match: * (create only)');
    }
    const contentLength = headers.get('content-length');
    // What the body holds of the budget while read: its declared size, or the limit when chunked.
    // Nothing for a body refused unread (over the limit, a bad Content-Length) or empty.
    const declared = contentLength === null ? limits.maxValueBytes : DIGITS_16.test(contentLength) ? Number(contentLength) : 0;
    const reserved = declared > limits.maxValueBytes ? 0 : declared;
    if (load === undefined || reserved === 0) return writeValue(request, target.value, contentLength, contentType, ifMatch.value, noneMatchHeader);
    if (!load.reserveBody(reserved)) {
      // Not read: the server throws the body away after this answer (bounded), so the client sees it.
      return errorResponse('BUSY', `too many request bodies in flight (over ${load.maxBodyBytesInFlight} bytes); retry later`);
    }
    try {
      return await writeValue(request, target.value, contentLength, contentType, ifMatch.value, noneMatchHeader);
    } finally {
      load.releaseBody(reserved);
    }
  }

  async function writeValue(
    request: Request,
    target: { readonly key: string; readonly consistency: Consistency },
    contentLength: string | null,
    contentType: string | null,
    ifMatch: Version | '*' | undefined | null,
    noneMatchHeader: string | null,
  ): Promise<Response> {
    const body = await readBodyWithin(request, contentLength, limits.maxValueBytes);
    if (!body.ok) {
      // Kept open when the server can throw the rest of the body away, so the client sees the answer.
      return errorResponse(body.code, body.message, undefined, body.close === true ? { connection: 'close' } : undefined);
    }
    if (ifMatch === null) return preconditionFailed('If-Match names no version this key can have');
    // Built field by field: conditional spreads cost a temporary object each on this hot path.
    const putOptions: { -readonly [K in keyof PutOptions]: PutOptions[K] } = { consistency: target.consistency };
    if (contentType !== null) putOptions.contentType = contentType;
    if (ifMatch !== undefined) putOptions.ifMatch = ifMatch;
    if (noneMatchHeader !== null) putOptions.ifNoneMatch = '*';
    const record = await service.put(target.key, body.value, putOptions);
    return new Response(null, { status: 204, headers: { etag: formatEtag(record.version) } });
  }

  async function deleteValue(request: Request, principal: Principal): Promise<Response> {
    const target = keyAndParams(request.url);
    if (!target.ok) return target.response;
    const denied = access.checkKey(request, principal, target.value.key, 'write');
    if (denied !== undefined) return denied;
    const ifMatch = ifMatchOf(request.headers.get('if-match'));
    if (!ifMatch.ok) return ifMatch.response;
    if (ifMatch.value === null) return preconditionFailed('If-Match names no version this key can have');
    await service.delete(target.value.key, {
      consistency: target.value.consistency,
      ...(ifMatch.value === undefined ? {} : { ifMatch: ifMatch.value }),
    });
    return new Response(null, { status: 204 });
  }

  async function listKeys(request: Request, principal: Principal): Promise<Response> {
    const query = parseQuery(request.url, LIST_PARAMS);
    if (!query.ok) return errorResponse(query.code, query.message);
    const params = query.params;
    const consistency = consistencyOf(params);
    if (!consistency.ok) return consistency.response;
    const prefix = params.get('prefix') ?? '';
    if (Buffer.byteLength(prefix, 'utf8') > limits.maxKeyBytes) {
      return errorResponse('INVALID_PARAMETER', `prefix is longer than ${limits.maxKeyBytes} bytes`);
    }
    const denied = access.checkListPrefix(request, principal, prefix);
    if (denied !== undefined) return denied;
    let limit = limits.defaultListLimit;
    const limitText = params.get('limit');
    if (limitText !== undefined) {
      limit = DIGITS.test(limitText) ? Number(limitText) : 0;
      if (limit < 1 || limit > limits.maxListLimit) {
        return errorResponse('INVALID_PARAMETER', `limit must be a whole number from 1 to ${limits.maxListLimit}`);
      }
    }
    const cursor = params.get('cursor');
    if (cursor !== undefined && (cursor.length === 0 || cursor.length > limits.maxCursorLength)) {
      return errorResponse('INVALID_CURSOR', 'cursor must be the next value of a previous page');
    }
    const page = await service.list({
      prefix,
      limit,
      consistency: consistency.value,
      ...(cursor === undefined ? {} : { cursor }),
    });
    const items = page.items.map((item) => ({ key: item.key, etag: formatEtag(item.version), size: item.size }));
    return jsonResponse({ items, next: page.next });
  }

  /**
   * The one rule for query strings: every route refuses a parameter it does
   * not take (`UNKNOWN_PARAMETER`), also the routes that take none, so a
   * misspelt parameter is never silently ignored.
   */
  function withoutParams(handler: () => Response | Promise<Response>) {
    return (request: Request): Response | Promise<Response> => {
      const query = parseQuery(request.url, NO_PARAMS);
      if (!query.ok) return errorResponse(query.code, query.message);
      return handler();
    };
  }

  async function health(): Promise<Response> {
    if (draining) return errorResponse('NOT_SERVING', 'the node is draining (shutting down)', { draining: true });
    let report;
    try {
      report = await service.health();
    } catch (error) {
      return errorResponse('NOT_SERVING', `health check failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    // The report's plain fields (a fenced node's clock figures, say) travel in the error beside code and message.
    if (!report.ok) return errorResponse('NOT_SERVING', report.reason ?? 'the node cannot serve', plainFields(report));
    for (const check of healthChecks) {
      const problem = check();
      if (problem !== undefined) return errorResponse('NOT_SERVING', problem);
    }
    const shedding = load?.shedding();
    if (shedding !== undefined) return errorResponse('NOT_SERVING', shedding, { shedding: true });
    return jsonResponse({ ...report, ...securityFields, status: 'ok' });
  }

  async function repair(request: Request): Promise<Response> {
    const query = parseQuery(request.url, NO_PARAMS);
    if (!query.ok) return errorResponse(query.code, query.message);
    const abort = new AbortController();
    const iterator = service.repair({ signal: abort.signal })[Symbol.asyncIterator]();
    // The first line decides the status: a repair that cannot start is an error answer.
    const first = await iterator.next();
    const encoder = new TextEncoder();
    const line = (value: unknown): Uint8Array => encoder.encode(`${JSON.stringify(value)}\n`);
    let sawSummary = false;
    const emit = (controller: ReadableStreamDefaultController<Uint8Array>, value: RepairLine): void => {
      if (value.type === 'summary') sawSummary = true;
      controller.enqueue(line(value));
    };
    const finish = (controller: ReadableStreamDefaultController<Uint8Array>): void => {
      if (!sawSummary) {
        controller.enqueue(line({ type: 'error', error: { code: 'INTERNAL', message: 'the repair ended without a summary' } }));
      }
      controller.close();
    };
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        if (first.done === true) finish(controller);
        else emit(controller, first.value);
      },
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (next.done === true) finish(controller);
          else emit(controller, next.value);
        } catch (error) {
          const code: HttpErrorCode = isServiceError(error) ? error.code : 'INTERNAL';
          if (code === 'INTERNAL') logger?.error({ err: error, route: '/v1/repair' }, 'repair failed');
          controller.enqueue(line({ type: 'error', error: { code, message: error instanceof Error ? error.message : String(error) } }));
          controller.close();
        }
      },
      cancel() {
        abort.abort(new Error('the client went away'));
        void iterator.return?.();
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-type': NDJSON, 'cache-control': 'no-store' } });
  }

  /** `POST /v1/admin/...`: a membership operation, answered 202 with the change as the service records it. */
  async function admin(request: Request, node: string | undefined): Promise<Response> {
    const query = parseQuery(request.url, node === undefined ? ABORT_PARAMS : NO_PARAMS);
    if (!query.ok) return errorResponse(query.code, query.message);
    const abortText = query.params.get('abort');
    if (abortText !== undefined && abortText !== 'true' && abortText !== 'false') {
      return errorResponse('INVALID_PARAMETER', 'abort must be true or false');
    }
    if (service.admin === undefined) return errorResponse('ROUTE_NOT_FOUND', 'this node has no membership operations (it is not a cluster member)');
    if (node !== undefined && (node.length === 0 || node.length > 128)) return errorResponse('INVALID_PARAMETER', 'the node id must be 1 to 128 characters');
    const answer = await service.admin(node === undefined ? { type: 'decommission', abort: abortText === 'true' } : { type: 'remove', node });
    return jsonResponse(answer, 202);
  }

  async function metricsText(): Promise<Response> {
    let text = await registry.metrics();
    if (service.metrics !== undefined) {
      const extra = await service.metrics();
      if (extra.length > 0) text += extra.endsWith('\n') ? extra : `${extra}\n`;
    }
    return new Response(text, { status: 200, headers: { 'content-type': registry.contentType } });
  }

  const app = new Hono();

  /**
   * A read-only route: GET (and HEAD, answered by Hono without the body),
   * for a token with the route's `access` (checked before anything else).
   */
  const readRoute = (route: RouteLabel, needs: Access, handler: (request: Request, principal: Principal) => Response | Promise<Response>) =>
    timed(route, (c) => {
      const method = c.req.method;
      if (method === 'GET' || method === 'HEAD') {
        const principal = access.check(c.req.raw, needs);
        return principal instanceof Response ? principal : handler(c.req.raw, principal);
      }
      if (method === 'OPTIONS') return optionsResponse(READ_ALLOW);
      return methodNotAllowed(method, READ_ALLOW);
    });

  app.all('/v1/kv', readRoute('/v1/kv', 'read', listKeys));
  app.all(
    '/v1/kv/*',
    timed('/v1/kv/{key}', (c) => {
      const request = c.req.raw;
      switch (request.method) {
        case 'GET':
        case 'HEAD': {
          const principal = access.check(request, 'read');
          return principal instanceof Response ? principal : getValue(request, principal);
        }
        case 'PUT': {
          const principal = access.check(request, 'write');
          return principal instanceof Response ? principal : putValue(request, principal);
        }
        case 'DELETE': {
          const principal = access.check(request, 'write');
          return principal instanceof Response ? principal : deleteValue(request, principal);
        }
        case 'OPTIONS':
          return optionsResponse(KV_ALLOW);
        default:
          return methodNotAllowed(request.method, KV_ALLOW);
      }
    }),
  );
  app.all('/v1/cluster', readRoute('/v1/cluster', 'read', withoutParams(async () => jsonResponse(await service.cluster()))));
  app.all('/v1/health', readRoute('/v1/health', 'open', withoutParams(health)));
  app.all(
    '/v1/openapi.json',
    readRoute('/v1/openapi.json', 'open', withoutParams(() => new Response(openApiBody, { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' } }))),
  );
  app.all('/metrics', readRoute('/metrics', 'metrics', withoutParams(metricsText)));
  app.all(
    '/v1/repair',
    timed('/v1/repair', (c) => {
      const method = c.req.method;
      if (method === 'POST') {
        const principal = access.check(c.req.raw, 'admin');
        return principal instanceof Response ? principal : repair(c.req.raw);
      }
      if (method === 'OPTIONS') return optionsResponse(POST_ALLOW);
      return methodNotAllowed(method, POST_ALLOW);
    }),
  );
  /** A membership operation: POST, for a token with the admin scope (checked before anything else). */
  const postRoute = (route: RouteLabel, handler: (c: Context) => Promise<Response>) =>
    timed(route, (c) => {
      const method = c.req.method;
      if (method === 'POST') {
        const principal = access.check(c.req.raw, 'admin');
        return principal instanceof Response ? principal : handler(c);
      }
      if (method === 'OPTIONS') return optionsResponse(POST_ALLOW);
      return methodNotAllowed(method, POST_ALLOW);
    });
  app.all('/v1/admin/decommission', postRoute('/v1/admin/decommission', (c) => admin(c.req.raw, undefined)));
  app.all(
    '/v1/admin/remove/:node',
    postRoute('/v1/admin/remove/{node}', (c) => {
      let node: string;
      try {
        node = decodeURIComponent(c.req.param('node') ?? '');
      } catch {
        return Promise.resolve(errorResponse('INVALID_PERCENT_ENCODING', 'the node id is not valid percent-encoded UTF-8'));
      }
      return admin(c.req.raw, node);
    }),
  );
  if (options.internal !== undefined) app.route('/internal', options.internal);

  // 404 with or without a token: the routes are no secret (/v1/openapi.json lists them), and a node
  // without the internode API answers /internal/* with 404 whatever the caller sends.
  const unmatched = timed('unmatched', (c) => errorResponse('ROUTE_NOT_FOUND', `no route ${c.req.method.slice(0, 32)} ${c.req.path.slice(0, 256)}`));
  app.notFound(unmatched);
  app.onError((error, c) => {
    logger?.error({ err: error, path: c.req.path }, 'unexpected error outside a route');
    return errorResponse('INTERNAL', 'internal error; the node logged it');
  });

  const controls: HearsayAppControls = {
    setDraining(value: boolean) {
      draining = value;
    },
    get draining() {
      return draining;
    },
    registry,
    limits,
  };
  return Object.defineProperties(app, Object.getOwnPropertyDescriptors(controls)) as HearsayApp;
}

/** The `security` and `warnings` fields of `/v1/health`. */
function securityOf(options: AppOptions): { security: Record<string, unknown>; warnings?: string[] } {
  const clientAuth = options.auth === undefined ? 'none' : 'tokens';
  const report = options.security;
  const warnings: string[] = [];
  if (clientAuth === 'none') warnings.push('no auth file: any client that reaches this port can read, write and delete every key (start with --auth-file)');
  if (report?.internode === 'insecure') warnings.push('--insecure: the internode API is open to anyone who reaches this port');
  const security = { clientAuth, ...(report === undefined ? {} : { tls: report.tls, internode: report.internode }) };
  return warnings.length === 0 ? { security } : { security, warnings };
}
