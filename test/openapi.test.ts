/**
 * `/v1/openapi.json` cannot drift from the server. The setup file
 * (support/openapi-setup.ts) checks every response of the suite against it;
 * this file shows that check failing on answers that do not conform, and
 * makes a node send every status and error code the document declares, each
 * on its operation — so the document declares nothing the server cannot
 * send. The server's own answers (the HTTP parser's 400, 408, 431, CONNECT's
 * 405) are checked here over raw sockets.
 */
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { MemoryLevel } from 'memory-level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, createToken, DEFAULT_LIMITS, guardServer, openApiDocument, parseAuthFile, requestErrorResponse, type HearsayApp } from '@hearsay/http';
import { createLocalService, ServiceError, type KvService, type ServiceErrorCode } from '@hearsay/service';
import { openStore, type LevelLike, type Store } from '@hearsay/storage';
import { conformanceProblems, EVERY_OPERATION, templateOf, type Exchange } from './support/openapi-conformance.ts';

const json = (_body: unknown): Headers => new Headers({ 'content-type': 'application/json; charset=utf-8' });

describe('the conformance check', () => {
  const error = (code: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ error: { code, message: 'm', ...extra } });
  const cases: [string, Exchange, RegExp | null][] = [
    ['a declared error', { method: 'GET', url: '/v1/kv/a', status: 404, headers: json({}), body: error('NOT_FOUND') }, null],
    ['a status the operation does not declare', { method: 'GET', url: '/v1/kv/a', status: 409, headers: json({}), body: error('CONFLICT') }, /status 409 is not declared/],
    ['a code declared under another status', { method: 'GET', url: '/v1/kv/a', status: 400, headers: json({}), body: error('NOT_FOUND') }, /allowed values/],
    ['a code the operation cannot answer', { method: 'GET', url: '/v1/cluster', status: 400, headers: json({}), body: error('KEY_EMPTY') }, /allowed values/],
    ['a detail the document does not know', { method: 'GET', url: '/v1/kv/a', status: 404, headers: json({}), body: error('NOT_FOUND', { retry: 1 }) }, /additional properties/],
    ['a missing ETag', { method: 'PUT', url: '/v1/kv/a', status: 204, headers: new Headers(), body: '' }, /header ETag is missing/],
    ['an unquoted ETag', { method: 'PUT', url: '/v1/kv/a', status: 204, headers: new Headers({ etag: 'v1' }), body: '' }, /header ETag/],
    ['an undeclared media type', { method: 'GET', url: '/v1/health', status: 200, headers: new Headers({ 'content-type': 'text/html' }), body: '<p>ok</p>' }, /Content-Type text\/html/],
    ['a field the health schema omits', { method: 'GET', url: '/v1/health', status: 200, headers: json({}), body: '{"ok":true,"status":"ok","uptime":5}' }, /additional properties/],
    [
      'a repair line of no known shape',
      { method: 'POST', url: '/v1/repair', status: 200, headers: new Headers({ 'content-type': 'application/x-ndjson' }), body: '{"type":"progress","done":1,"total":2}\n{"type":"finished"}\n' },
      /\{"type":"finished"\}: \/ must/,
    ],
    ['a method the path does not serve, with its 405', { method: 'PATCH', url: '/v1/health', status: 405, headers: new Headers({ 'content-type': 'application/json', allow: 'GET' }), body: error('METHOD_NOT_ALLOWED') }, null],
    ['a method the path does not serve, answered 200', { method: 'PATCH', url: '/v1/health', status: 200, headers: json({}), body: '{}' }, /does not serve answered a status/],
    ['a path outside the document', { method: 'GET', url: '/v2/kv/a', status: 404, headers: json({}), body: error('ROUTE_NOT_FOUND') }, null],
    ['a path outside the document, answered 200', { method: 'GET', url: '/v2/kv/a', status: 200, headers: json({}), body: '{}' }, /outside the document/],
    ['a body where none is declared', { method: 'DELETE', url: '/v1/kv/a', status: 204, headers: new Headers(), body: 'x' }, /a body where the document declares none/],
  ];
  it.each(cases)('%s', (_name, exchange, expected) => {
    const problems = conformanceProblems(exchange);
    if (expected === null) expect(problems).toEqual([]);
    else expect(problems.join('\n')).toMatch(expected);
  });

  it('routes URLs as the app does', () => {
    expect(templateOf('/v1/kv/a/b')).toBe('/v1/kv/{key}');
    expect(templateOf('/v1/k%76/a')).toBe('/v1/kv/{key}');
    expect(templateOf('/v1/kv%2Fa')).toBeUndefined();
    expect(templateOf('/v1/health/')).toBeUndefined();
    expect(templateOf('/metrics')).toBe('/metrics');
    expect(templateOf('/v1/admin/remove/n%3A4')).toBe('/v1/admin/remove/{node}');
    expect(templateOf('/v1/admin/remove/a/b')).toBeUndefined();
    expect(templateOf('/v1/admin/remove/')).toBeUndefined();
  });
});

/** What a cluster node answers a membership operation: its topology with the change recorded. */
const topologyOf = (kind: 'decommission' | 'remove', member: string): Record<string, unknown> => ({
  epoch: 'e2',
  ring: [{ id: member, status: kind === 'remove' ? 'removing' : 'leaving', version: 2 }],
  queued: [],
  change: { kind, member, key: `${kind}:${member}:2`, waitingFor: ['n2'], done: 0, total: 4 },
  transfers: [{ partition: 0, to: 'n2', from: ['n1'], state: 'waiting' }],
});

/**
 * A local node whose service refuses on request: keys `refuse/<CODE>`, list prefixes `refuse/<CODE>`, `crash`;
 * it has membership operations, refused with `state.adminRefusal` when set.
 */
function scripted(
  inner: KvService,
  state: { healthy: boolean; repairRefusal: ServiceErrorCode | undefined; adminRefusal: ServiceErrorCode | undefined },
): KvService {
  const refusal = (key: string): ServiceError | Error | undefined => {
    if (key === 'crash') return new Error('a bug');
    const code = /^refuse\/([A-Z_]+)$/.exec(key)?.[1];
    return code === undefined ? undefined : new ServiceError(code as ServiceErrorCode, 'scripted');
  };
  return {
    get: (key, options) => (refusal(key) === undefined ? inner.get(key, options) : Promise.reject(refusal(key))),
    put: (key, value, options) => (refusal(key) === undefined ? inner.put(key, value, options) : Promise.reject(refusal(key))),
    delete: (key, options) => (refusal(key) === undefined ? inner.delete(key, options) : Promise.reject(refusal(key))),
    list: (options) => (refusal(options.prefix) === undefined ? inner.list(options) : Promise.reject(refusal(options.prefix))),
    cluster: () => inner.cluster(),
    health: async () => (state.healthy ? inner.health() : { ok: false, reason: 'scripted' }),
    repair: (options) => {
      const code = state.repairRefusal;
      if (code === undefined) return inner.repair(options);
      return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new ServiceError(code, 'scripted')) }) };
    },
    metrics: () => inner.metrics?.() ?? '',
    admin: async (request) => {
      if (state.adminRefusal !== undefined) throw new ServiceError(state.adminRefusal, 'scripted');
      return topologyOf(request.type, request.type === 'remove' ? request.node : 'n1');
    },
  };
}

describe('every status and code the document declares', () => {
  const state = { healthy: true, repairRefusal: undefined as ServiceErrorCode | undefined, adminRefusal: undefined as ServiceErrorCode | undefined };
  let db: MemoryLevel;
  let store: Store;
  let app: HearsayApp;
  let server: Server;
  let port: number;
  const produced = new Set<string>();
  const problems: string[] = [];

  const note = (exchange: Exchange): void => {
    problems.push(...conformanceProblems(exchange));
    const template = templateOf(new URL(exchange.url, 'http://x').pathname) ?? 'outside';
    let code = '';
    if (exchange.status >= 400 && exchange.method !== 'HEAD' && exchange.body !== undefined && exchange.body.length > 0) {
      code = String((JSON.parse(exchange.body) as { error: { code: string } }).error.code);
    }
    produced.add(`${template} ${exchange.method.toLowerCase()} ${exchange.status} ${code}`.trimEnd());
  };

  async function send(method: string, path: string, init: RequestInit = {}): Promise<Response> {
    const response = await app.request(path, { ...init, method });
    const body = method === 'HEAD' ? '' : await response.clone().text();
    note({ method, url: path, status: response.status, headers: response.headers, body });
    return response;
  }

  /** Raw bytes to the server; the answer (up to the server closing, or `waitFor` matching) as an exchange. */
  function raw(method: string, path: string, bytes: string, waitFor?: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      let text = '';
      const done = (): void => {
        socket.destroy();
        const [head = '', ...rest] = text.split('\r\n\r\n');
        const [statusLine = '', ...lines] = head.split('\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]);
        if (!Number.isInteger(status)) {
          reject(new Error(`no answer to ${method} ${path}: ${JSON.stringify(text.slice(0, 200))}`));
          return;
        }
        const headers = new Headers();
        for (const line of lines) headers.append(line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim());
        note({ method, url: path, status, headers, body: rest.join('\r\n\r\n') });
        resolve();
      };
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (waitFor?.test(text) === true) done();
      });
      socket.on('error', () => undefined);
      socket.on('close', done);
      socket.write(bytes);
    });
  }

  beforeAll(async () => {
    db = new MemoryLevel();
    store = await openStore({ db: db as unknown as LevelLike, nodeId: 'n1', bucketBits: 4 });
    app = createApp({ service: scripted(createLocalService(store), state), limits: { maxValueBytes: 64 } });
    // As a node serves it, with request timeouts short enough to see the 408 (checked every 50 ms).
    server = createServer({ headersTimeout: 300, requestTimeout: 400, connectionsCheckingInterval: 50 }, getRequestListener(app.fetch, { errorHandler: requestErrorResponse }));
    guardServer(server, app.limits);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    await db.close();
  });

  it('are each sent by a node, on the operation that declares them', async () => {
    const written = await send('PUT', '/v1/kv/k', { body: 'v', headers: { 'content-type': 'text/plain' } });
    const etag = written.headers.get('etag')!;
    const keyFaults: [string, RequestInit?][] = [
      ['/v1/kv/'],
      [`/v1/kv/${'k'.repeat(DEFAULT_LIMITS.maxKeyBytes + 1)}`],
      ['/v1/kv/a%zz'],
      ['/v1/kv/%FF'],
      ['/v1/kv/k?x=1'],
      ['/v1/kv/k?consistency=two'],
      ['/v1/kv/k', { headers: { 'if-match': 'not-a-tag' } }],
      ['/v1/kv/k', { headers: { 'if-match': '"1.0.nobody"' } }],
    ];
    const refusals = (codes: readonly string[]): string[] => codes.map((code) => `/v1/kv/refuse/${code}`);
    for (const method of ['GET', 'HEAD']) {
      await send(method, '/v1/kv/k');
      await send(method, '/v1/kv/k', { headers: { 'if-none-match': etag } });
      await send(method, '/v1/kv/missing');
      for (const [path, init] of keyFaults) await send(method, path, init);
      for (const path of refusals(['INSUFFICIENT_REPLICAS', 'TIMEOUT', 'UNAVAILABLE'])) await send(method, path);
    }
    for (const method of ['PUT', 'DELETE']) {
      for (const [path, init] of keyFaults) await send(method, path, { body: method === 'PUT' ? 'v' : null, ...init });
      for (const path of refusals(['INSUFFICIENT_REPLICAS', 'TIMEOUT', 'UNAVAILABLE', 'BUSY', 'CLOCK_SKEW', 'CONFLICT'])) await send(method, path, { body: method === 'PUT' ? 'v' : null });
    }
    await send('PUT', '/v1/kv/k', { body: 'v', headers: { 'if-none-match': '*' } });
    await send('PUT', '/v1/kv/k', { body: 'x'.repeat(65) });
    await send('PUT', '/v1/kv/k', { body: 'v', headers: { 'content-type': 'not a type' } });
    await send('PUT', '/v1/kv/k', { body: 'v', headers: { 'content-encoding': 'gzip' } });
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1]));
        controller.error(new Error('the client went away'));
      },
    });
    await send('PUT', '/v1/kv/k', { body: broken, duplex: 'half' } as RequestInit);
    await send('DELETE', '/v1/kv/gone');

    for (const method of ['GET', 'HEAD']) {
      await send(method, '/v1/kv?prefix=k');
      for (const query of ['x=1', 'limit=0', 'prefix=%zz', 'prefix=%FF', 'cursor=bad']) await send(method, `/v1/kv?${query}`);
      for (const code of ['INSUFFICIENT_REPLICAS', 'TIMEOUT', 'UNAVAILABLE']) await send(method, `/v1/kv?prefix=refuse/${code}`);
    }
    for (const [method, path] of [['GET', '/v1/cluster'], ['GET', '/v1/health'], ['GET', '/v1/openapi.json'], ['GET', '/metrics'], ['POST', '/v1/repair']] as const) {
      const methods = method === 'GET' ? ['GET', 'HEAD'] : [method];
      for (const m of methods) for (const query of ['', '?x=1', '?%zz', '?%FF']) await send(m, `${path}${query}`);
    }
    state.repairRefusal = 'CONFLICT';
    await send('POST', '/v1/repair');
    state.repairRefusal = undefined;
    // Membership operations: recorded, refused for their parameters, refused by the cluster, and absent on a single node.
    for (const query of ['', '?abort=true', '?x=1', '?abort=maybe', '?%zz', '?%FF']) await send('POST', `/v1/admin/decommission${query}`);
    for (const path of ['n2', 'n2?x=1', 'n2?%FF', 'x'.repeat(129), '%E0%A4%A']) await send('POST', `/v1/admin/remove/${path}`);
    for (const [code, path] of [
      ['BELOW_REPLICATION_FACTOR', '/v1/admin/decommission'],
      ['CONFLICT', '/v1/admin/decommission?abort=true'],
      ['UNAVAILABLE', '/v1/admin/decommission'],
      ['UNKNOWN_MEMBER', '/v1/admin/remove/n9'],
      ['MEMBER_ALIVE', '/v1/admin/remove/n2'],
      ['CONFLICT', '/v1/admin/remove/n1'],
      ['UNAVAILABLE', '/v1/admin/remove/n2'],
    ] as const) {
      state.adminRefusal = code;
      await send('POST', path);
    }
    state.adminRefusal = undefined;
    const single = createApp({ service: createLocalService(store) });
    for (const path of ['/v1/admin/decommission', '/v1/admin/remove/n2']) {
      const response = await single.request(path, { method: 'POST' });
      note({ method: 'POST', url: path, status: response.status, headers: response.headers, body: await response.text() });
    }
    for (const path of Object.keys(openApiDocument(DEFAULT_LIMITS)['paths'] as object)) await send('OPTIONS', path.replace('{key}', 'k'));

    // A node with an auth file: no token is 401, a token without the scope 403, on every route that needs one.
    const metricsOnly = createToken({ scopes: ['metrics'], id: 'scraper' });
    const readOnly = createToken({ scopes: ['read'], id: 'reader' });
    const guarded = createApp({ service: createLocalService(store), auth: parseAuthFile([metricsOnly.line, readOnly.line].join('\n')) });
    const sendGuarded = async (method: string, path: string, token?: string): Promise<void> => {
      const response = await guarded.request(path, { method, ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }) });
      note({ method, url: path, status: response.status, headers: response.headers, body: method === 'HEAD' ? '' : await response.text() });
    };
    for (const [method, path] of [['GET', '/v1/kv/k'], ['HEAD', '/v1/kv/k'], ['PUT', '/v1/kv/k'], ['DELETE', '/v1/kv/k'], ['GET', '/v1/kv'], ['HEAD', '/v1/kv'], ['GET', '/v1/cluster'], ['HEAD', '/v1/cluster'], ['POST', '/v1/repair'], ['POST', '/v1/admin/decommission'], ['POST', '/v1/admin/remove/n2'], ['GET', '/metrics'], ['HEAD', '/metrics']] as const) {
      await sendGuarded(method, path);
      await sendGuarded(method, path, path === '/metrics' ? readOnly.token : metricsOnly.token);
    }

    // What every operation declares, each once: a bug, a node that cannot serve, a method a path does not serve, and the server's own answers.
    await send('GET', '/v1/kv/crash');
    state.healthy = false;
    await send('GET', '/v1/health');
    state.healthy = true;
    await send('PATCH', '/v1/health');
    await raw('CONNECT', '/v1/health', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n');
    await raw('GET', '/v1/health', 'GET /v1/health HTTP/9.9\r\n\r\n');
    await raw('GET', '/v1/health', `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`);
    await raw('GET', '/v1/health', 'GET /v1/health HTTP/1.1\r\nHost: x\r\n', /\r\n\r\n\{.*\}$/s); // the head never ends: 408

    expect(problems).toEqual([]);
    const missing = declaredAnswers().filter((entry) =>
      entry.startsWith('any ') ? ![...produced].some((p) => p.split(' ').slice(2).join(' ') === entry.slice(4)) : !produced.has(entry),
    );
    expect(missing).toEqual([]);
  });
});

type ResponseSpec = { content?: Record<string, { schema?: { allOf?: { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } }[] } }> };

/**
 * What the document declares, as `<path> <method> <status> [code]`: each
 * operation's success answers and its own error codes (a HEAD has the
 * statuses of its GET, without bodies), and `any <status> <code>` for what
 * every operation declares.
 */
function declaredAnswers(): string[] {
  const doc = openApiDocument(DEFAULT_LIMITS) as { paths: Record<string, Record<string, { responses: Record<string, ResponseSpec> }>> };
  const ownCodes = (response: ResponseSpec, status: number): string[] | undefined =>
    response.content?.['application/json']?.schema?.allOf?.[1]?.properties?.error?.properties?.code?.enum?.filter((code) => !(EVERY_OPERATION.get(status)?.has(code) ?? false));
  const declared: string[] = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const source = method === 'head' ? item['get']! : operation;
      for (const [status, response] of Object.entries(source.responses)) {
        const own = ownCodes(response, Number(status));
        if (own === undefined) declared.push(`${template} ${method} ${status}`);
        else if (method === 'head' && own.length > 0) declared.push(`${template} head ${status}`);
        else if (method !== 'head') for (const code of own) declared.push(`${template} ${method} ${status} ${code}`);
      }
    }
  }
  for (const [status, codes] of EVERY_OPERATION) for (const code of codes) declared.push(`any ${status} ${code}`);
  return declared;
}

describe('the declared answers', () => {
  it('are listed for the coverage check (a sanity check of the listing itself)', () => {
    const declared = declaredAnswers();
    expect(declared).toContain('/v1/kv/{key} get 404 NOT_FOUND');
    expect(declared).toContain('/v1/kv/{key} head 404');
    expect(declared).toContain('/v1/repair post 409 CONFLICT');
    expect(declared).toContain('any 431 HEADERS_TOO_LARGE');
    expect(declared).not.toContain('/v1/health get 500 INTERNAL');
  });
});
