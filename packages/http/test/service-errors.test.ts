/**
 * How the app maps what a service does (errors, health, repair streams,
 * extra metrics) to HTTP, with a scripted fake service.
 */
import { Hono } from 'hono';
import { describe, expect, it, vi } from 'vitest';
import { insufficientReplicas, ServiceError, type KvService, type RepairLine, type ServiceErrorCode } from '@hearsay/service';
import { createApp } from '../src/index.ts';

const VERSION = { ms: 1_700_000_000_000, counter: 3, node: 'n1' };

function fakeService(overrides: Partial<KvService> = {}): KvService {
  return {
    get: async (key) => ({ key, value: new TextEncoder().encode('v'), version: VERSION, tombstone: false }),
    put: async (key, value) => ({ key, value, version: VERSION, tombstone: false }),
    delete: async (key) => ({ key, value: new Uint8Array(0), version: VERSION, tombstone: true }),
    list: async () => ({ items: [], next: null }),
    cluster: async () => ({ self: 'n1', members: [] }),
    health: async () => ({ ok: true }),
    async *repair() {
      yield { type: 'summary', inSync: true, rangesCompared: 0, keysSent: 0, keysReceived: 0, bytesSent: 0, bytesReceived: 0, durationMs: 0 };
    },
    ...overrides,
  };
}

async function errorOf(response: Response): Promise<Record<string, unknown>> {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as { error: Record<string, unknown> };
  return body.error;
}

async function lines(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text();
  expect(text.endsWith('\n')).toBe(true);
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('service errors', () => {
  it('a write too few replicas acknowledged is 503 INSUFFICIENT_REPLICAS saying how many', async () => {
    const app = createApp({ service: fakeService({ put: async () => Promise.reject(insufficientReplicas(1, 2, 3)) }) });
    const response = await app.request('/v1/kv/a', { method: 'PUT', body: 'x' });
    expect(response.status).toBe(503);
    expect(await errorOf(response)).toEqual({
      code: 'INSUFFICIENT_REPLICAS',
      message: '2 of 3 replicas required, 1 acknowledged',
      acknowledged: 1,
      required: 2,
    });
  });

  // Each code through a method the service contract lets raise it (and the document declares for its route).
  const refuse = (code: ServiceErrorCode) => () => Promise.reject(new ServiceError(code, 'said by the service'));
  it.each([
    ['PRECONDITION_FAILED', 412, 'PUT', '/v1/kv/a', { put: refuse('PRECONDITION_FAILED') }],
    ['UNAVAILABLE', 503, 'GET', '/v1/kv/a', { get: refuse('UNAVAILABLE') }],
    ['TIMEOUT', 503, 'DELETE', '/v1/kv/a', { delete: refuse('TIMEOUT') }],
    ['BUSY', 503, 'PUT', '/v1/kv/a', { put: refuse('BUSY') }],
    ['INVALID_CURSOR', 400, 'GET', '/v1/kv?cursor=abc', { list: refuse('INVALID_CURSOR') }],
    ['VALUE_TOO_LARGE', 413, 'PUT', '/v1/kv/a', { put: refuse('VALUE_TOO_LARGE') }],
    ['KEY_TOO_LONG', 400, 'PUT', '/v1/kv/a', { put: refuse('KEY_TOO_LONG') }],
  ] as const)('%s answers %i', async (code, status, method, path, override: Partial<KvService>) => {
    const app = createApp({ service: fakeService(override) });
    const response = await app.request(path, { method, ...(method === 'PUT' ? { body: 'x' } : {}) });
    expect(response.status).toBe(status);
    expect(await errorOf(response)).toMatchObject({ code, message: 'said by the service' });
  });

  it('an unexpected error is a logged 500 INTERNAL that does not leak the message', async () => {
    const logger = { error: vi.fn() };
    const app = createApp({ service: fakeService({ delete: async () => Promise.reject(new Error('secret detail')) }), logger });
    const response = await app.request('/v1/kv/a', { method: 'DELETE' });
    expect(response.status).toBe(500);
    const error = await errorOf(response);
    expect(error.code).toBe('INTERNAL');
    expect(String(error.message)).not.toContain('secret');
    expect(logger.error).toHaveBeenCalledOnce();
    // The node still serves.
    expect((await app.request('/v1/kv/a')).status).toBe(200);
  });
});

describe('service errors from elsewhere', () => {
  it('maps an error named ServiceError with a known code, as from another copy of the package', async () => {
    const foreign = Object.assign(new Error('1 of 3 acknowledged'), { name: 'ServiceError', code: 'INSUFFICIENT_REPLICAS', details: { acknowledged: 1, required: 2 } });
    const app = createApp({ service: fakeService({ get: async () => Promise.reject(foreign) }) });
    const response = await app.request('/v1/kv/a');
    expect(response.status).toBe(503);
    expect(await errorOf(response)).toEqual({ code: 'INSUFFICIENT_REPLICAS', message: '1 of 3 acknowledged', acknowledged: 1, required: 2 });
  });

  it('answers a ServiceError with an unknown code as a logged 500', async () => {
    const logger = { error: vi.fn() };
    const bogus = new ServiceError('NO_SUCH_CODE' as 'UNAVAILABLE', 'oops');
    const app = createApp({ service: fakeService({ get: async () => Promise.reject(bogus) }), logger });
    const response = await app.request('/v1/kv/a');
    expect(response.status).toBe(500);
    expect((await errorOf(response)).code).toBe('INTERNAL');
    expect(logger.error).toHaveBeenCalledOnce();
  });
});

describe('what the service is asked', () => {
  it('passes parsed keys, values, conditions and consistency', async () => {
    const put = vi.fn(fakeService().put);
    const list = vi.fn(fakeService().list);
    const app = createApp({ service: fakeService({ put, list }), defaultConsistency: 'one' });
    const etag = `"${VERSION.ms}.${VERSION.counter}.${VERSION.node}"`;
    await app.request('/v1/kv/a%2Fb/c?consistency=all', { method: 'PUT', body: 'xyz', headers: { 'if-match': etag, 'content-type': 'text/plain' } });
    expect(put).toHaveBeenCalledWith('a/b/c', new TextEncoder().encode('xyz'), { consistency: 'all', contentType: 'text/plain', ifMatch: VERSION });
    await app.request('/v1/kv/k', { method: 'PUT', body: new Uint8Array(0), headers: { 'if-none-match': '*' } });
    expect(put).toHaveBeenLastCalledWith('k', new Uint8Array(0), { consistency: 'one', ifNoneMatch: '*' });
    await app.request('/v1/kv?prefix=caf%C3%A9&limit=7&cursor=abc');
    expect(list).toHaveBeenCalledWith({ prefix: 'café', limit: 7, cursor: 'abc', consistency: 'one' });
  });
});

describe('health', () => {
  it('is 503 NOT_SERVING when the service says so or fails', async () => {
    const sick = createApp({ service: fakeService({ health: async () => ({ ok: false, reason: 'joining the cluster' }) }) });
    const response = await sick.request('/v1/health');
    expect(response.status).toBe(503);
    expect(await errorOf(response)).toEqual({ code: 'NOT_SERVING', message: 'joining the cluster' });
    const broken = createApp({ service: fakeService({ health: async () => Promise.reject(new Error('disk gone')) }) });
    expect((await broken.request('/v1/health')).status).toBe(503);
  });
});

describe('repair stream', () => {
  it('streams progress lines then the summary', async () => {
    const app = createApp({
      service: fakeService({
        async *repair(): AsyncIterable<RepairLine> {
          yield { type: 'progress', done: 1, total: 2 };
          yield { type: 'progress', done: 2, total: 2 };
          yield { type: 'summary', inSync: false, rangesCompared: 2, keysSent: 5, keysReceived: 1, bytesSent: 500, bytesReceived: 100, durationMs: 12 };
        },
      }),
    });
    const response = await app.request('/v1/repair', { method: 'POST' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const got = await lines(response);
    expect(got.map((line) => line.type)).toEqual(['progress', 'progress', 'summary']);
    expect(got[2]).toMatchObject({ inSync: false, keysSent: 5 });
  });

  it('a repair that cannot start is an error answer', async () => {
    const app = createApp({
      service: fakeService({
        repair: (): AsyncIterable<RepairLine> => ({
          [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new ServiceError('CONFLICT', 'a repair is already running')) }),
        }),
      }),
    });
    const response = await app.request('/v1/repair', { method: 'POST' });
    expect(response.status).toBe(409);
    expect(await errorOf(response)).toMatchObject({ code: 'CONFLICT' });
  });

  it('a failure midway, or a stream without a summary, ends with an error line', async () => {
    const failing = createApp({
      service: fakeService({
        async *repair(): AsyncIterable<RepairLine> {
          yield { type: 'progress', done: 1, total: 3 };
          throw insufficientReplicas(0, 1);
        },
      }),
    });
    const got = await lines(await failing.request('/v1/repair', { method: 'POST' }));
    expect(got).toEqual([
      { type: 'progress', done: 1, total: 3 },
      { type: 'error', error: { code: 'INSUFFICIENT_REPLICAS', message: '1 replicas required, 0 acknowledged' } },
    ]);
    const silent = createApp({
      service: fakeService({
        async *repair(): AsyncIterable<RepairLine> {
          yield { type: 'progress', done: 1, total: 3 };
        },
      }),
    });
    const last = (await lines(await silent.request('/v1/repair', { method: 'POST' }))).at(-1);
    expect(last).toMatchObject({ type: 'error', error: { code: 'INTERNAL' } });
  });

  it('a client that goes away aborts the repair', async () => {
    let signal: AbortSignal | undefined;
    const app = createApp({
      service: fakeService({
        async *repair(options): AsyncIterable<RepairLine> {
          signal = options.signal;
          for (let i = 0; ; i++) yield { type: 'progress', done: i, total: i + 1 }; // endless: total grows
        },
      }),
    });
    const response = await app.request('/v1/repair', { method: 'POST' });
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    expect(signal?.aborted).toBe(true);
  });
});

describe('composition', () => {
  it('adds process metrics when asked', async () => {
    const plain = await (await createApp({ service: fakeService() }).request('/metrics')).text();
    expect(plain).not.toContain('hearsay_process_cpu_seconds_total');
    const withProcess = await (await createApp({ service: fakeService(), processMetrics: true }).request('/metrics')).text();
    expect(withProcess).toContain('hearsay_process_cpu_seconds_total');
    expect(withProcess).toContain('hearsay_nodejs_eventloop_lag_seconds');
  });

  it('mounts internal routes under /internal and appends service metrics', async () => {
    const internal = new Hono();
    internal.get('/ping', (c) => c.text('pong'));
    const app = createApp({ service: fakeService({ metrics: () => '# TYPE cluster_members gauge\ncluster_members 3' }), internal });
    expect(await (await app.request('/internal/ping')).text()).toBe('pong');
    const text = await (await app.request('/metrics')).text();
    expect(text).toContain('cluster_members 3\n');
  });
});
