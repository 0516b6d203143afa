import { CLIENT_ERROR_CODES, HearsayError } from './errors.ts';
import { encodeKeyPath } from './key-path.ts';
import { readNdjson } from './ndjson.ts';
import type {
  CallOptions,
  ClientOptions,
  ClusterView,
  Consistency,
  DeleteOptions,
  FetchLike,
  GetOptions,
  Health,
  KvEntry,
  KvHead,
  ListItem,
  ListOptions,
  ListPage,
  NotModified,
  PutOptions,
  PutResult,
  ReadOptions,
  RepairLine,
} from './types.ts';

export const DEFAULT_BASE_URL = 'http://127.0.0.1:7000';
export const DEFAULT_TIMEOUT_MS = 30_000;

interface Request {
  readonly method: string;
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly body?: Uint8Array | string;
  readonly options: CallOptions | undefined;
}

const utf8 = new TextDecoder();

/**
 * A typed client for HTTP API v1 of one node (any node of a cluster serves
 * the whole API). Every failure is a `HearsayError`; a missing key is not a
 * failure (`get` and `head` resolve with `undefined`).
 */
export class HearsayClient {
  readonly baseUrl: string;
  readonly #fetch: FetchLike;
  readonly #consistency: Consistency | undefined;
  readonly #timeoutMs: number;
  readonly #headers: Readonly<Record<string, string>>;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#consistency = options.consistency;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#headers = options.token === undefined ? (options.headers ?? {}) : { ...options.headers, authorization: `Bearer ${checkToken(options.token)}` };
  }

  /** The value of `key`, `undefined` when it is missing or deleted, or `NotModified` when `ifNoneMatch` matched. */
  get(key: string, options?: GetOptions & { readonly ifNoneMatch?: undefined }): Promise<KvEntry | undefined>;
  get(key: string, options: GetOptions): Promise<KvEntry | NotModified | undefined>;
  async get(key: string, options?: GetOptions): Promise<KvEntry | NotModified | undefined> {
    return this.#call(
      {
        method: 'GET',
        path: `/v1/kv/${encodeKeyPath(key)}`,
        query: { consistency: this.#consistencyOf(options) },
        headers: { 'if-none-match': options?.ifNoneMatch },
        options,
      },
      async (response) => {
        if (response.status === 404) return undefined;
        if (response.status === 304) return { notModified: true, key, etag: requireEtag(response) };
        await expectOk(response, 200);
        const value = new Uint8Array(await response.arrayBuffer());
        const etag = requireEtag(response);
        const contentType = response.headers.get('content-type') ?? 'application/octet-stream';
        return { notModified: false, key, value, etag, contentType, text: () => utf8.decode(value) };
      },
    );
  }

  /** The metadata of `key` without its value, or `undefined` when it is missing or deleted. */
  async head(key: string, options?: ReadOptions): Promise<KvHead | undefined> {
    return this.#call(
      { method: 'HEAD', path: `/v1/kv/${encodeKeyPath(key)}`, query: { consistency: this.#consistencyOf(options) }, options },
      async (response) => {
        if (response.status === 404) return undefined;
        await expectOk(response, 200);
        return {
          key,
          etag: requireEtag(response),
          contentType: response.headers.get('content-type') ?? 'application/octet-stream',
          size: Number(response.headers.get('content-length') ?? 0),
        };
      },
    );
  }

  async put(key: string, value: Uint8Array | string, options?: PutOptions): Promise<PutResult> {
    const contentType = options?.contentType ?? (typeof value === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream');
    return this.#call(
      {
        method: 'PUT',
        path: `/v1/kv/${encodeKeyPath(key)}`,
        query: { consistency: this.#consistencyOf(options) },
        headers: { 'content-type': contentType, 'if-match': options?.ifMatch, 'if-none-match': options?.ifNoneMatch },
        body: value,
        options,
      },
      async (response) => {
        await expectOk(response, 204);
        return { etag: requireEtag(response) };
      },
    );
  }

  /** Writes a tombstone; deleting a missing key succeeds. */
  async delete(key: string, options?: DeleteOptions): Promise<void> {
    return this.#call(
      {
        method: 'DELETE',
        path: `/v1/kv/${encodeKeyPath(key)}`,
        query: { consistency: this.#consistencyOf(options) },
        headers: { 'if-match': options?.ifMatch },
        options,
      },
      async (response) => {
        await expectOk(response, 204);
      },
    );
  }

  /** One page of live keys, sorted by key. */
  async list(options?: ListOptions): Promise<ListPage> {
    return this.#call(
      {
        method: 'GET',
        path: '/v1/kv',
        query: { prefix: options?.prefix, limit: options?.limit, cursor: options?.cursor, consistency: options?.consistency },
        options,
      },
      async (response) => {
        const body = await readJson(response);
        if (!isRecord(body) || !Array.isArray(body['items']) || !(body['next'] === null || typeof body['next'] === 'string')) {
          throw badResponse(response, 'listing is not { items: [...], next }');
        }
        return { items: body['items'] as ListItem[], next: body['next'] };
      },
    );
  }

  /** Every live key (with `prefix`), page after page; `limit` is the page size. */
  async *listAll(options?: Omit<ListOptions, 'cursor'>): AsyncGenerator<ListItem, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.list(cursor === undefined ? { ...options } : { ...options, cursor });
      yield* page.items;
      cursor = page.next ?? undefined;
    } while (cursor !== undefined);
  }

  async cluster(options?: CallOptions): Promise<ClusterView> {
    return this.#call({ method: 'GET', path: '/v1/cluster', options }, async (response) => {
      const body = await readJson(response);
      if (!isRecord(body) || typeof body['self'] !== 'string' || !Array.isArray(body['members'])) {
        throw badResponse(response, 'cluster view is not { self, members: [...] }');
      }
      return body as unknown as ClusterView;
    });
  }

  /** The node's health; a node that cannot serve fails with its 503 code (e.g. `NOT_SERVING`). */
  async health(options?: CallOptions): Promise<Health> {
    return this.#call({ method: 'GET', path: '/v1/health', options }, async (response) => {
      const body = await readJson(response);
      if (!isRecord(body) || typeof body['ok'] !== 'boolean') throw badResponse(response, 'health is not { ok, ... }');
      return body as Health;
    });
  }

  /** Prometheus exposition text. */
  async metrics(options?: CallOptions): Promise<string> {
    return this.#call({ method: 'GET', path: '/metrics', options }, async (response) => {
      await expectOk(response, 200);
      return response.text();
    });
  }

  /**
   * Runs a repair (`POST /v1/repair`) and yields its progress lines as they
   * arrive; the last line is the summary. `timeoutMs` bounds the wait for the
   * answer to start, not the repair itself; use `signal` to stop it. Breaking
   * out of the loop closes the connection.
   */
  /**
   * `POST /v1/admin/decommission` on this client's node: it streams each of
   * its partitions to the next owner, then leaves (`abort: true` takes it
   * back). Resolves with the change as recorded; `cluster()` shows progress.
   */
  async decommission(options?: CallOptions & { readonly abort?: boolean }): Promise<Record<string, unknown>> {
    const path = options?.abort === true ? '/v1/admin/decommission?abort=true' : '/v1/admin/decommission';
    return this.#call({ method: 'POST', path, options }, async (response) => {
      return acceptedObject(response);
    });
  }

  /** `POST /v1/admin/remove/{node}`: removes a member that is down for good (its partitions are re-replicated). */
  async remove(node: string, options?: CallOptions): Promise<Record<string, unknown>> {
    return this.#call({ method: 'POST', path: `/v1/admin/remove/${encodeURIComponent(node)}`, options }, async (response) => {
      return acceptedObject(response);
    });
  }

  async *repair(options?: CallOptions): AsyncGenerator<RepairLine, void, undefined> {
    const response = await this.#send({ method: 'POST', path: '/v1/repair', options }, false);
    await expectOk(response, 200);
    if (response.body === null) throw badResponse(response, 'repair answer has no body');
    let summarised = false;
    try {
      for await (const line of readNdjson(response.body)) {
        if (!isRecord(line) || (line['type'] !== 'progress' && line['type'] !== 'summary')) {
          throw badResponse(response, `unexpected repair line ${JSON.stringify(line).slice(0, 200)}`);
        }
        if (line['type'] === 'summary') summarised = true;
        yield line as unknown as RepairLine;
      }
    } catch (error) {
      throw toHearsayError(error, options?.signal, undefined);
    }
    if (!summarised) throw badResponse(response, 'repair answer ended without a summary line');
  }

  #consistencyOf(options: ReadOptions | undefined): Consistency | undefined {
    return options?.consistency ?? this.#consistency;
  }

  /** Sends `request` and reads its answer with `read`, all under one timeout. */
  async #call<T>(request: Request, read: (response: Response) => Promise<T>): Promise<T> {
    const timeout = new AbortController();
    const timeoutMs = request.options?.timeoutMs ?? this.#timeoutMs;
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    try {
      const response = await this.#send(request, true, timeout.signal);
      try {
        return await read(response);
      } catch (error) {
        throw toHearsayError(error, request.options?.signal, timeout.signal, timeoutMs);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** When `timed` is false the timeout covers only the wait for the status line and headers. */
  async #send(request: Request, timed: boolean, timeoutSignal?: AbortSignal): Promise<Response> {
    const url = new URL(this.baseUrl + request.path);
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { ...this.#headers };
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (value !== undefined) headers[name] = value;
    }
    const timeoutMs = request.options?.timeoutMs ?? this.#timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let ownTimeout = timeoutSignal;
    if (!timed) {
      const controller = new AbortController();
      timer = setTimeout(() => controller.abort(), timeoutMs);
      ownTimeout = controller.signal;
    }
    const signals = [ownTimeout, request.options?.signal].filter((signal): signal is AbortSignal => signal !== undefined);
    const init: RequestInit = { method: request.method, headers, signal: AbortSignal.any(signals) };
    if (request.body !== undefined) init.body = request.body;
    try {
      return await this.#fetch(url.toString(), init);
    } catch (error) {
      throw toHearsayError(error, request.options?.signal, ownTimeout, timeoutMs, this.baseUrl);
    } finally {
      // A streaming answer keeps flowing after the headers; only the caller's signal stops it from here on.
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

/** A token as a header can carry it: RFC 6750 token characters only (a pasted newline would otherwise break the request). */
function checkToken(token: string): string {
  if (!/^[A-Za-z0-9._~+/-]+=*$/.test(token)) {
    throw new HearsayError(CLIENT_ERROR_CODES.INVALID_ARGUMENT, 'token must be the text hearsay token create printed (letters, digits and . _ ~ + / -)', 0);
  }
  return token;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireEtag(response: Response): string {
  const etag = response.headers.get('etag');
  if (etag === null) throw badResponse(response, 'answer has no ETag');
  return etag;
}

function badResponse(response: Response, message: string): HearsayError {
  return new HearsayError(CLIENT_ERROR_CODES.BAD_RESPONSE, message, response.status);
}

/** Throws the server's error unless the status is `expected`. */
async function expectOk(response: Response, expected: number): Promise<void> {
  if (response.status === expected) return;
  throw await errorFromResponse(response);
}

/** The JSON object of a 202 answer. */
async function acceptedObject(response: Response): Promise<Record<string, unknown>> {
  await expectOk(response, 202);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch (error) {
    throw new HearsayError(CLIENT_ERROR_CODES.BAD_RESPONSE, `answer is not JSON: ${text.slice(0, 200)}`, response.status, { cause: error });
  }
  if (!isRecord(body)) throw badResponse(response, 'answer is not a JSON object');
  return body;
}

async function readJson(response: Response): Promise<unknown> {
  await expectOk(response, 200);
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HearsayError(CLIENT_ERROR_CODES.BAD_RESPONSE, `answer is not JSON: ${text.slice(0, 200)}`, response.status, { cause: error });
  }
}

/**
 * The `HearsayError` of an error answer `{ "error": { "code", "message", ...details } }`.
 * An answer without that body (a HEAD, or a proxy's page) gets the code `HTTP_<status>`.
 */
export async function errorFromResponse(response: Response): Promise<HearsayError> {
  const text = response.body === null ? '' : await response.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const error = isRecord(body) ? body['error'] : undefined;
  if (isRecord(error) && typeof error['code'] === 'string') {
    const { code, message, ...details } = error;
    return new HearsayError(code, typeof message === 'string' ? message : code, response.status, { details });
  }
  const statusText = response.statusText === '' ? '' : ` ${response.statusText}`;
  const snippet = text === '' ? '' : `: ${text.slice(0, 200)}`;
  return new HearsayError(`HTTP_${response.status}`, `HTTP ${response.status}${statusText}${snippet}`, response.status);
}

function toHearsayError(
  error: unknown,
  callerSignal: AbortSignal | undefined,
  timeoutSignal: AbortSignal | undefined,
  timeoutMs?: number,
  baseUrl?: string,
): HearsayError {
  if (error instanceof HearsayError) return error;
  if (callerSignal?.aborted === true) {
    return new HearsayError(CLIENT_ERROR_CODES.ABORTED, 'request aborted', 0, { cause: error });
  }
  if (timeoutSignal?.aborted === true) {
    return new HearsayError(CLIENT_ERROR_CODES.TIMEOUT, `no answer within ${timeoutMs ?? '?'} ms`, 0, { cause: error });
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const reason = isRecord(cause) && typeof cause['code'] === 'string' ? cause['code'] : cause instanceof Error ? cause.message : String(cause);
  const where = baseUrl === undefined ? 'connection failed' : `cannot reach ${baseUrl}`;
  return new HearsayError(CLIENT_ERROR_CODES.NETWORK_ERROR, `${where}: ${reason}`, 0, { cause: error });
}
