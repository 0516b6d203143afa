/**
 * `KvService.getNow`: a service that can read a key without waiting lets the
 * app answer a GET synchronously. The answer must be the one the same
 * record gives through `get`, header for header; `null` falls back to `get`.
 */
import { describe, expect, it, vi } from 'vitest';
import type { StoredRecord } from '@hearsay/storage';
import { ServiceError, type KvService } from '@hearsay/service';
import { createApp } from '../src/index.ts';

const VERSION = { ms: 1_700_000_000_000, counter: 3, node: 'n1' };
const OTHER_VERSION = { ms: 1_700_000_000_000, counter: 4, node: 'n1' };

const RECORDS: Record<string, StoredRecord> = {
  plain: { key: 'plain', value: new TextEncoder().encode('hello'), version: VERSION, tombstone: false },
  typed: { key: 'typed', value: new TextEncoder().encode('{"a":1}'), version: VERSION, tombstone: false, contentType: 'application/json' },
  empty: { key: 'empty', value: new Uint8Array(0), version: VERSION, tombstone: false },
};

function service(withGetNow: boolean, get = vi.fn(async (key: string) => RECORDS[key])): KvService & { get: typeof get } {
  return {
    get,
    ...(withGetNow ? { getNow: (key: string) => RECORDS[key] } : {}),
    put: async () => Promise.reject(new Error('not in these tests')),
    delete: async () => Promise.reject(new Error('not in these tests')),
    list: async () => ({ items: [], next: null }),
    cluster: async () => ({ self: 'n1', members: [] }),
    health: async () => ({ ok: true }),
    async *repair() {},
  };
}

async function snapshot(response: Response): Promise<unknown> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  return { status: response.status, headers, body: await response.text() };
}

const ETAG = `"${VERSION.ms}.${VERSION.counter}.${VERSION.node}"`;
const CASES: [string, string, RequestInit?][] = [
  ['a value', '/v1/kv/plain'],
  ['a value with its content type', '/v1/kv/typed'],
  ['an empty value', '/v1/kv/empty'],
  ['a missing key', '/v1/kv/missing'],
  ['HEAD', '/v1/kv/typed', { method: 'HEAD' }],
  ['If-None-Match that hits', '/v1/kv/plain', { headers: { 'if-none-match': ETAG } }],
  ['If-None-Match that misses', '/v1/kv/plain', { headers: { 'if-none-match': '"1.0.x"' } }],
  ['If-Match that holds', '/v1/kv/plain', { headers: { 'if-match': ETAG } }],
  ['If-Match on a missing key', '/v1/kv/missing', { headers: { 'if-match': '*' } }],
  ['If-Match of another version', '/v1/kv/plain', { headers: { 'if-match': `"${OTHER_VERSION.ms}.${OTHER_VERSION.counter}.n1"` } }],
  ['a consistency level', '/v1/kv/plain?consistency=all'],
  ['a bad consistency level', '/v1/kv/plain?consistency=most'],
];

describe('GET answered by getNow', () => {
  it.each(CASES)('%s: the same answer as through get', async (_name, path, init) => {
    const viaGet = createApp({ service: service(false) });
    const viaNow = createApp({ service: service(true) });
    expect(await snapshot(await viaNow.request(path, init))).toEqual(await snapshot(await viaGet.request(path, init)));
  });

  it('the cases cover every kind of answer', async () => {
    const app = createApp({ service: service(true) });
    const statuses = new Set<number>();
    for (const [, path, init] of CASES) statuses.add((await app.request(path, init)).status);
    expect([...statuses].sort()).toEqual([200, 304, 400, 404, 412]);
  });

  it('answers synchronously (no promise) and never calls get', async () => {
    const s = service(true);
    const app = createApp({ service: s });
    const answer = app.fetch(new Request('http://localhost/v1/kv/typed'));
    expect(answer).toBeInstanceOf(Response);
    expect(await (answer as Response).text()).toBe('{"a":1}');
    expect(s.get).not.toHaveBeenCalled();
    // Counted in the metrics like any answer.
    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toMatch(/hearsay_http_requests_total\{route="\/v1\/kv\/\{key\}",method="GET",status="200"\} 1/);
  });

  it('falls back to get when getNow answers null', async () => {
    const s = service(true);
    s.getNow = vi.fn(() => null);
    const app = createApp({ service: s });
    const answer = app.fetch(new Request('http://localhost/v1/kv/plain'));
    expect(answer).toBeInstanceOf(Promise);
    expect((await answer).status).toBe(200);
    expect(s.getNow).toHaveBeenCalledOnce();
    expect(s.get).toHaveBeenCalledWith('plain', { consistency: 'quorum' });
  });

  it('an error thrown by getNow is answered as the same error rejected by get', async () => {
    const error = () => new ServiceError('INSUFFICIENT_REPLICAS', '1 of 1 replicas required, 0 acknowledged', { acknowledged: 0, required: 1 });
    const viaGet = createApp({ service: service(false, vi.fn(async () => Promise.reject(error()))) });
    const throwing = service(true);
    throwing.getNow = () => {
      throw error();
    };
    const viaNow = createApp({ service: throwing });
    const expected = await snapshot(await viaGet.request('/v1/kv/plain'));
    expect(await snapshot(await viaNow.request('/v1/kv/plain'))).toEqual(expected);
    expect(expected).toMatchObject({ status: 503 });
  });

  it('an unexpected error thrown by getNow is a logged 500, and the node keeps serving', async () => {
    const logger = { error: vi.fn() };
    const s = service(true);
    let fail = true;
    s.getNow = (key) => {
      if (fail) throw new Error('secret detail');
      return RECORDS[key];
    };
    const app = createApp({ service: s, logger });
    const response = await app.request('/v1/kv/plain');
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain('secret');
    expect(logger.error).toHaveBeenCalledOnce();
    fail = false;
    expect((await app.request('/v1/kv/plain')).status).toBe(200);
  });

  it('while draining, a synchronous answer also closes the connection', async () => {
    const app = createApp({ service: service(true) });
    app.setDraining(true);
    const answer = app.fetch(new Request('http://localhost/v1/kv/plain')) as Response;
    expect(answer.headers.get('connection')).toBe('close');
  });
});
