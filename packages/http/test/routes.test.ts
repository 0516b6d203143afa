/**
 * Every row of the HTTP API v1 contract (docs/api.md), every error code the
 * app raises itself, and the limits, through `app.request()` over a real
 * local service on memory-level storage.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_DISCARD_BYTES } from '../src/body.ts';
import { HTTP_ERROR_STATUS } from '../src/errors.ts';
import { openLocalNode, type LocalNode } from './local-node.ts';

let node: LocalNode;
beforeEach(async () => {
  node = await openLocalNode({ limits: { maxValueBytes: 1000 } });
});
afterEach(async () => {
  await node.close();
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function request(path: string, init: RequestInit = {}): Promise<Response> {
  return node.app.request(path, init) as Promise<Response>;
}

async function put(key: string, value: string | Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return request(`/v1/kv/${key}`, { method: 'PUT', body: typeof value === 'string' ? bytes(value) : value, headers });
}

async function expectError(response: Response, status: number, code: string): Promise<Record<string, unknown>> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
  const body = (await response.json()) as { error: Record<string, unknown> };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(HTTP_ERROR_STATUS[code as keyof typeof HTTP_ERROR_STATUS]).toBe(status);
  return body.error;
}

describe('PUT, GET, HEAD, DELETE /v1/kv/{key}', () => {
  it('PUT answers 204 with a quoted ETag; GET returns the bytes, ETag and Content-Type', async () => {
    const written = await put('greeting', 'hello', { 'content-type': 'text/plain; charset=utf-8' });
    expect(written.status).toBe(204);
    const etag = written.headers.get('etag');
    expect(etag).toMatch(/^"[!#-~]+"$/);
    const read = await request('/v1/kv/greeting');
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe(etag);
    expect(read.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await read.text()).toBe('hello'); // Content-Length comes from the server (see server-fuzz.test.ts)
  });

  it('stores any bytes, and defaults Content-Type to application/octet-stream', async () => {
    const value = new Uint8Array([0, 255, 1, 254, 10, 13]);
    expect((await put('bin', value)).status).toBe(204);
    const read = await request('/v1/kv/bin');
    expect(read.headers.get('content-type')).toBe('application/octet-stream');
    expect(new Uint8Array(await read.arrayBuffer())).toEqual(value);
    expect((await put('empty', new Uint8Array(0))).status).toBe(204);
    const empty = await request('/v1/kv/empty');
    expect(empty.status).toBe(200);
    expect((await empty.arrayBuffer()).byteLength).toBe(0);
  });

  it('an overwrite gets a new ETag and GET sees the new value', async () => {
    const first = (await put('k', 'one')).headers.get('etag');
    const second = (await put('k', 'two')).headers.get('etag');
    expect(second).not.toBe(first);
    const read = await request('/v1/kv/k');
    expect(await read.text()).toBe('two');
    expect(read.headers.get('etag')).toBe(second);
  });

  it('HEAD is GET without the body', async () => {
    await put('k', 'value', { 'content-type': 'text/plain' });
    const head = await request('/v1/kv/k', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('5');
    expect(head.headers.get('content-type')).toBe('text/plain');
    expect(head.headers.get('etag')).toMatch(/^".+"$/);
    expect(await head.text()).toBe('');
    const missing = await request('/v1/kv/nope', { method: 'HEAD' });
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('');
  });

  it('GET of a missing key is 404 NOT_FOUND', async () => {
    await expectError(await request('/v1/kv/missing'), 404, 'NOT_FOUND');
  });

  it('DELETE writes a tombstone: 204, then 404; deleting a missing key is also 204', async () => {
    await put('k', 'v');
    const deleted = await request('/v1/kv/k', { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe('');
    await expectError(await request('/v1/kv/k'), 404, 'NOT_FOUND');
    expect((await request('/v1/kv/never-was', { method: 'DELETE' })).status).toBe(204);
    expect(node.store.stats()).toMatchObject({ keys: 0, tombstones: 2 });
  });

  it('keys: "/" inside, percent-encoding, UTF-8, 1024 bytes', async () => {
    await put('a/b/c', 'slashes');
    expect(await (await request('/v1/kv/a%2Fb%2Fc')).text()).toBe('slashes');
    await put('caf%C3%A9%20%E2%82%AC', 'unicode');
    expect(await (await request(`/v1/kv/${encodeURIComponent('café €')}`)).text()).toBe('unicode');
    expect((await node.store.get('café €'))?.value).toEqual(bytes('unicode'));
    await put('q%3Fx%23y%25z', 'reserved');
    expect((await node.store.get('q?x#y%z'))?.value).toEqual(bytes('reserved'));
    const longest = 'k'.repeat(1024);
    expect((await put(longest, 'v')).status).toBe(204);
    expect((await request(`/v1/kv/${longest}`)).status).toBe(200);
    const euros = '%E2%82%AC'.repeat(341); // 1023 bytes
    expect((await put(euros, 'v')).status).toBe(204);
  });
});

describe('bad keys', () => {
  it.each([
    ['/v1/kv/', 400, 'KEY_EMPTY'],
    [`/v1/kv/${'k'.repeat(1025)}`, 400, 'KEY_TOO_LONG'],
    [`/v1/kv/${'%E2%82%AC'.repeat(342)}`, 400, 'KEY_TOO_LONG'],
    ['/v1/kv/a%zzb', 400, 'INVALID_PERCENT_ENCODING'],
    ['/v1/kv/a%', 400, 'INVALID_PERCENT_ENCODING'],
    ['/v1/kv/a%2', 400, 'INVALID_PERCENT_ENCODING'],
    ['/v1/kv/%FF', 400, 'INVALID_UTF8'],
    ['/v1/kv/%C3%28', 400, 'INVALID_UTF8'],
    ['/v1/kv/%ED%A0%80', 400, 'INVALID_UTF8'],
  ])('%s -> %i %s, for every method', async (path, status, code) => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      await expectError(await request(path, method === 'PUT' ? { method, body: bytes('v') } : { method }), status, code);
    }
    expect((await request(path, { method: 'HEAD' })).status).toBe(status);
  });
});

describe('conditional requests', () => {
  it('If-Match writes only over that version', async () => {
    const etag = (await put('k', 'one')).headers.get('etag')!;
    const updated = await put('k', 'two', { 'if-match': etag });
    expect(updated.status).toBe(204);
    await expectError(await put('k', 'three', { 'if-match': etag }), 412, 'PRECONDITION_FAILED');
    expect(await (await request('/v1/kv/k')).text()).toBe('two');
    expect((await put('k', 'four', { 'if-match': updated.headers.get('etag')! })).status).toBe(204);
  });

  it('If-Match: * needs a live value; weak and foreign tags never match', async () => {
    await expectError(await put('k', 'v', { 'if-match': '*' }), 412, 'PRECONDITION_FAILED');
    const etag = (await put('k', 'v')).headers.get('etag')!;
    expect((await put('k', 'v2', { 'if-match': '*' })).status).toBe(204);
    const current = (await request('/v1/kv/k')).headers.get('etag')!;
    await expectError(await put('k', 'v3', { 'if-match': `W/${current}` }), 412, 'PRECONDITION_FAILED');
    await expectError(await put('k', 'v3', { 'if-match': '"not-a-version"' }), 412, 'PRECONDITION_FAILED');
    await expectError(await put('k', 'v3', { 'if-match': etag }), 412, 'PRECONDITION_FAILED');
    await expectError(await put('gone', 'v', { 'if-match': current }), 412, 'PRECONDITION_FAILED');
  });

  it('a malformed If-Match or a list of tags is 400 INVALID_HEADER', async () => {
    const etag = (await put('k', 'v')).headers.get('etag')!;
    await expectError(await put('k', 'v', { 'if-match': 'unquoted' }), 400, 'INVALID_HEADER');
    await expectError(await put('k', 'v', { 'if-match': `${etag}, "x"` }), 400, 'INVALID_HEADER');
    await expectError(await request('/v1/kv/k', { method: 'DELETE', headers: { 'if-match': '"open' } }), 400, 'INVALID_HEADER');
  });

  it('If-None-Match: * creates only', async () => {
    expect((await put('k', 'first', { 'if-none-match': '*' })).status).toBe(204);
    await expectError(await put('k', 'second', { 'if-none-match': '*' }), 412, 'PRECONDITION_FAILED');
    expect(await (await request('/v1/kv/k')).text()).toBe('first');
    await request('/v1/kv/k', { method: 'DELETE' });
    expect((await put('k', 'again', { 'if-none-match': '*' })).status).toBe(204);
    await expectError(await put('k', 'v', { 'if-none-match': '"abc"' }), 400, 'INVALID_HEADER');
  });

  it('GET with If-None-Match of the current ETag is 304', async () => {
    const etag = (await put('k', 'v')).headers.get('etag')!;
    for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const response = await request('/v1/kv/k', { headers: { 'if-none-match': header } });
      expect(response.status).toBe(304);
      expect(response.headers.get('etag')).toBe(etag);
      expect(await response.text()).toBe('');
    }
    expect((await request('/v1/kv/k', { method: 'HEAD', headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await request('/v1/kv/k', { headers: { 'if-none-match': '"other"' } })).status).toBe(200);
    await expectError(await request('/v1/kv/k', { headers: { 'if-none-match': 'junk' } }), 400, 'INVALID_HEADER');
    await expectError(await request('/v1/kv/missing', { headers: { 'if-none-match': etag } }), 404, 'NOT_FOUND');
  });

  it('GET and HEAD with If-Match answer 412 unless it holds', async () => {
    const etag = (await put('k', 'v')).headers.get('etag')!;
    expect((await request('/v1/kv/k', { headers: { 'if-match': etag } })).status).toBe(200);
    expect((await request('/v1/kv/k', { headers: { 'if-match': '*' } })).status).toBe(200);
    await expectError(await request('/v1/kv/k', { headers: { 'if-match': '"1.0.other"' } }), 412, 'PRECONDITION_FAILED');
    await expectError(await request('/v1/kv/k', { headers: { 'if-match': `W/${etag}` } }), 412, 'PRECONDITION_FAILED');
    await expectError(await request('/v1/kv/missing', { headers: { 'if-match': '*' } }), 412, 'PRECONDITION_FAILED');
    expect((await request('/v1/kv/k', { method: 'HEAD', headers: { 'if-match': '"1.0.other"' } })).status).toBe(412);
    await expectError(await request('/v1/kv/k', { headers: { 'if-match': 'nope' } }), 400, 'INVALID_HEADER');
  });

  it('DELETE with If-Match deletes only that version', async () => {
    const etag = (await put('k', 'one')).headers.get('etag')!;
    await put('k', 'two');
    await expectError(await request('/v1/kv/k', { method: 'DELETE', headers: { 'if-match': etag } }), 412, 'PRECONDITION_FAILED');
    const current = (await request('/v1/kv/k')).headers.get('etag')!;
    expect((await request('/v1/kv/k', { method: 'DELETE', headers: { 'if-match': current } })).status).toBe(204);
    await expectError(await request('/v1/kv/k', { method: 'DELETE', headers: { 'if-match': '*' } }), 412, 'PRECONDITION_FAILED');
  });

  it('concurrent creates with If-None-Match: * let exactly one win', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => put('race', `v${i}`, { 'if-none-match': '*' })));
    expect(answers.filter((r) => r.status === 204)).toHaveLength(1);
    expect(answers.filter((r) => r.status === 412)).toHaveLength(19);
  });
});

describe('consistency and query parameters', () => {
  it('accepts one, quorum and all on every KV request', async () => {
    for (const level of ['one', 'quorum', 'all']) {
      expect((await put(`k?consistency=${level}`, 'v')).status).toBe(204);
      expect((await request(`/v1/kv/k?consistency=${level}`)).status).toBe(200);
      expect((await request(`/v1/kv/k?consistency=${level}`, { method: 'HEAD' })).status).toBe(200);
      expect((await request(`/v1/kv?consistency=${level}`)).status).toBe(200);
      expect((await request(`/v1/kv/k?consistency=${level}`, { method: 'DELETE' })).status).toBe(200 + 4);
    }
  });

  it.each([
    ['/v1/kv/k?consistency=two', 'INVALID_PARAMETER'],
    ['/v1/kv/k?consistency=', 'INVALID_PARAMETER'],
    ['/v1/kv/k?consistency=ONE', 'INVALID_PARAMETER'],
    ['/v1/kv/k?consistency=one&consistency=all', 'INVALID_PARAMETER'],
    ['/v1/kv/k?consistancy=one', 'UNKNOWN_PARAMETER'],
    ['/v1/kv/k?prefix=a', 'UNKNOWN_PARAMETER'],
    ['/v1/kv/k?consistency=%zz', 'INVALID_PERCENT_ENCODING'],
    ['/v1/kv?consistency=most', 'INVALID_PARAMETER'],
    ['/v1/kv?limit=0', 'INVALID_PARAMETER'],
    ['/v1/kv?limit=1001', 'INVALID_PARAMETER'],
    ['/v1/kv?limit=-1', 'INVALID_PARAMETER'],
    ['/v1/kv?limit=1.5', 'INVALID_PARAMETER'],
    ['/v1/kv?limit=ten', 'INVALID_PARAMETER'],
    ['/v1/kv?limit=', 'INVALID_PARAMETER'],
    [`/v1/kv?prefix=${'p'.repeat(1025)}`, 'INVALID_PARAMETER'],
    ['/v1/kv?prefix=%FF', 'INVALID_UTF8'],
    ['/v1/kv?cursor=', 'INVALID_CURSOR'],
    ['/v1/kv?cursor=not-a-cursor', 'INVALID_CURSOR'],
    ['/v1/kv?page=2', 'UNKNOWN_PARAMETER'],
    ['/v1/repair?force=1', 'UNKNOWN_PARAMETER'],
    // One rule on every route, also those that take no parameter at all.
    ['/v1/health?_=1712', 'UNKNOWN_PARAMETER'],
    ['/v1/cluster?verbose', 'UNKNOWN_PARAMETER'],
    ['/metrics?name=x', 'UNKNOWN_PARAMETER'],
    ['/v1/openapi.json?v=2', 'UNKNOWN_PARAMETER'],
    ['/v1/health?%zz', 'INVALID_PERCENT_ENCODING'],
  ])('%s -> 400 %s', async (path, code) => {
    const method = path.startsWith('/v1/repair') ? 'POST' : 'GET';
    await expectError(await request(path, { method }), 400, code);
  });
});

describe('GET /v1/kv', () => {
  it('lists live keys sorted, with ETag and size, by prefix, a page at a time', async () => {
    const keys = ['b/2', 'a/1', 'b/1', 'c', 'b/3', 'a/2'];
    for (const key of keys) await put(key, key.repeat(2));
    await request('/v1/kv/a%2F2', { method: 'DELETE' });
    const all = (await (await request('/v1/kv')).json()) as { items: { key: string; etag: string; size: number }[]; next: string | null };
    expect(all.items.map((item) => item.key)).toEqual(['a/1', 'b/1', 'b/2', 'b/3', 'c']);
    expect(all.next).toBeNull();
    const etag = (await request('/v1/kv/b/1')).headers.get('etag');
    expect(all.items[1]).toEqual({ key: 'b/1', etag, size: 6 });

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `/v1/kv?prefix=b%2F&limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const response = await request(query);
      expect(response.status).toBe(200);
      const page = (await response.json()) as { items: { key: string }[]; next: string | null };
      seen.push(...page.items.map((item) => item.key));
      cursor = page.next;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual(['b/1', 'b/2', 'b/3']);
  });

  it('defaults to 100 items and allows 1000', async () => {
    await node.store.batch(Array.from({ length: 1001 }, (_, i) => ({ type: 'put' as const, key: `k${String(i).padStart(4, '0')}`, value: 'v' })));
    const first = (await (await request('/v1/kv')).json()) as { items: unknown[]; next: string | null };
    expect(first.items).toHaveLength(100);
    expect(first.next).not.toBeNull();
    const most = (await (await request('/v1/kv?limit=1000')).json()) as { items: unknown[]; next: string | null };
    expect(most.items).toHaveLength(1000);
    const rest = (await (await request(`/v1/kv?limit=1000&cursor=${encodeURIComponent(most.next!)}`)).json()) as { items: unknown[]; next: string | null };
    expect(rest.items).toHaveLength(1);
    expect(rest.next).toBeNull();
  });
});

describe('GET /v1/cluster, /v1/health, POST /v1/repair', () => {
  it('the cluster of a single node is itself, alive', async () => {
    const response = await request('/v1/cluster');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      self: 'node-1',
      members: [{ id: 'node-1', state: 'alive', http: 'http://127.0.0.1:7000', gossip: '', incarnation: 0 }],
    });
  });

  it('health is 200, and 503 NOT_SERVING with Connection: close while draining', async () => {
    const healthy = await request('/v1/health');
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ status: 'ok', ok: true, node: 'node-1' });
    node.app.setDraining(true);
    expect(node.app.draining).toBe(true);
    const draining = await request('/v1/health');
    expect(draining.headers.get('connection')).toBe('close');
    await expectError(draining, 503, 'NOT_SERVING');
    // Requests are still served while draining.
    expect((await put('k', 'v')).status).toBe(204);
    node.app.setDraining(false);
    expect((await request('/v1/health')).status).toBe(200);
  });

  it('repair on a single node streams one summary: in sync, nothing to do', async () => {
    const response = await request('/v1/repair', { method: 'POST' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await response.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: 'summary', inSync: true, rangesCompared: 0, keysSent: 0, keysReceived: 0 });
  });
});

describe('methods and routes', () => {
  it.each([
    ['/v1/kv/k', 'PATCH', 'GET, HEAD, PUT, DELETE, OPTIONS'],
    ['/v1/kv/k', 'POST', 'GET, HEAD, PUT, DELETE, OPTIONS'],
    ['/v1/kv', 'PUT', 'GET, HEAD, OPTIONS'],
    ['/v1/kv', 'DELETE', 'GET, HEAD, OPTIONS'],
    ['/v1/cluster', 'POST', 'GET, HEAD, OPTIONS'],
    ['/v1/health', 'DELETE', 'GET, HEAD, OPTIONS'],
    ['/v1/repair', 'GET', 'POST, OPTIONS'],
    ['/metrics', 'POST', 'GET, HEAD, OPTIONS'],
    ['/v1/openapi.json', 'PUT', 'GET, HEAD, OPTIONS'],
  ])('%s %s -> 405 METHOD_NOT_ALLOWED with Allow', async (path, method, allow) => {
    const response = await request(path, { method });
    expect(response.headers.get('allow')).toBe(allow);
    await expectError(response, 405, 'METHOD_NOT_ALLOWED');
    const options = await request(path, { method: 'OPTIONS' });
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe(allow);
  });

  it.each(['/', '/v1', '/v2/kv/k', '/v1/kvx', '/v1/health/x', '/internal/anything'])('%s -> 404 ROUTE_NOT_FOUND', async (path) => {
    await expectError(await request(path), 404, 'ROUTE_NOT_FOUND');
  });
});

describe('value limits and bodies', () => {
  it('a value at the limit is stored; one byte over is 413 by Content-Length, before reading', async () => {
    expect((await put('k', new Uint8Array(1000))).status).toBe(204);
    let pulled = false;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulled = true;
          controller.enqueue(new Uint8Array(1001));
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    const response = await request('/v1/kv/k', { method: 'PUT', body, duplex: 'half', headers: { 'content-length': '1001' } } as RequestInit);
    // Kept open: the server throws the unread body away after the answer, so a client still sending sees the 413.
    expect(response.headers.get('connection')).toBeNull();
    await expectError(response, 413, 'VALUE_TOO_LARGE');
    expect(pulled).toBe(false);
    expect((await request('/v1/kv/k', { method: 'HEAD' })).headers.get('content-length')).toBe('1000');
    // A body too large to throw away closes the connection instead.
    const huge = await request('/v1/kv/k', { method: 'PUT', body: 'x', headers: { 'content-length': String(MAX_DISCARD_BYTES + 1) } });
    expect(huge.headers.get('connection')).toBe('close');
    await expectError(huge, 413, 'VALUE_TOO_LARGE');
  });

  it('a streamed body without Content-Length stops being kept once it passes the limit; the rest is read and dropped', async () => {
    let pulled = 0;
    const long = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        if (pulled > 10_000) controller.close();
        else controller.enqueue(new Uint8Array(300));
      },
    });
    const response = await request('/v1/kv/k', { method: 'PUT', body: long, duplex: 'half' } as RequestInit);
    // Read to its end (3 MB, within MAX_DISCARD_BYTES), so the connection can stay open.
    expect(response.headers.get('connection')).toBeNull();
    await expectError(response, 413, 'VALUE_TOO_LARGE');
    expect(pulled).toBe(10_001);
    await expectError(await request('/v1/kv/k'), 404, 'NOT_FOUND');
  });

  it('a streamed body that goes on past MAX_DISCARD_BYTES is cut off and its connection closed', async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(new Uint8Array(1024 * 1024));
      },
    });
    const response = await request('/v1/kv/k', { method: 'PUT', body: endless, duplex: 'half' } as RequestInit);
    expect(response.headers.get('connection')).toBe('close');
    await expectError(response, 413, 'VALUE_TOO_LARGE');
    expect(pulled * 1024 * 1024).toBeGreaterThan(MAX_DISCARD_BYTES);
    expect(pulled * 1024 * 1024).toBeLessThan(MAX_DISCARD_BYTES + 4 * 1024 * 1024);
  });

  it('a streamed body within the limit is stored whole', async () => {
    const chunks = [bytes('ab'), bytes('cd'), bytes('ef')];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(next);
      },
    });
    expect((await request('/v1/kv/k', { method: 'PUT', body, duplex: 'half' } as RequestInit)).status).toBe(204);
    expect(await (await request('/v1/kv/k')).text()).toBe('abcdef');
  });

  it('the service is handed a buffer of the body alone, never a view into a larger one (it keeps it without a copy)', async () => {
    await put('k', 'first'); // an overwrite is cached: the store then holds the very buffer it was handed
    const socketRead = bytes('....view....');
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(socketRead.subarray(4, 8));
        controller.close();
      },
    });
    expect((await request('/v1/kv/k', { method: 'PUT', body, duplex: 'half' } as RequestInit)).status).toBe(204);
    const streamed = node.store.getRecordNow('k')!.value;
    expect(new TextDecoder().decode(streamed)).toBe('view');
    expect(streamed.buffer.byteLength).toBe(4);
    expect(streamed.buffer).not.toBe(socketRead.buffer);
    expect((await put('k', 'sized')).status).toBe(204);
    const sized = node.store.getRecordNow('k')!.value;
    expect(new TextDecoder().decode(sized)).toBe('sized');
    expect(sized.buffer.byteLength).toBe(5);
  });

  it('a body that breaks off is 400 INCOMPLETE_BODY', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes('part'));
        controller.error(new Error('connection reset'));
      },
    });
    await expectError(await request('/v1/kv/k', { method: 'PUT', body, duplex: 'half' } as RequestInit), 400, 'INCOMPLETE_BODY');
  });

  it('the default limit is 1 MiB', async () => {
    const defaults = await openLocalNode();
    try {
      const at = await defaults.app.request('/v1/kv/k', { method: 'PUT', body: new Uint8Array(1024 * 1024) });
      expect(at.status).toBe(204);
      const over = await defaults.app.request('/v1/kv/k', { method: 'PUT', body: new Uint8Array(1024 * 1024 + 1) });
      expect(over.status).toBe(413);
    } finally {
      await defaults.close();
    }
  });

  it.each([
    [{ 'content-type': 'not a media type' }, 'UNSUPPORTED_MEDIA_TYPE'],
    [{ 'content-type': 'text/' }, 'UNSUPPORTED_MEDIA_TYPE'],
    [{ 'content-type': `text/${'x'.repeat(300)}` }, 'UNSUPPORTED_MEDIA_TYPE'],
    [{ 'content-encoding': 'gzip' }, 'UNSUPPORTED_CONTENT_ENCODING'],
  ])('PUT with %j -> 415 %s', async (headers, code) => {
    await expectError(await put('k', 'v', headers), 415, code);
  });

  it('Content-Encoding: identity is fine', async () => {
    expect((await put('k', 'v', { 'content-encoding': 'identity' })).status).toBe(204);
  });
});

describe('GET /metrics and /v1/openapi.json', () => {
  it('counts requests and latencies by route, method and status, and reports storage figures', async () => {
    await put('a', 'v');
    await put('b', 'v');
    await request('/v1/kv/b', { method: 'DELETE' });
    await request('/v1/kv/a');
    await request('/v1/kv/missing');
    await request('/v1/kv/x', { method: 'FROB' });
    await request('/nowhere');
    const response = await request('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('hearsay_http_requests_total{route="/v1/kv/{key}",method="PUT",status="204"} 2');
    expect(text).toContain('hearsay_http_requests_total{route="/v1/kv/{key}",method="GET",status="200"} 1');
    expect(text).toContain('hearsay_http_requests_total{route="/v1/kv/{key}",method="GET",status="404"} 1');
    expect(text).toContain('hearsay_http_requests_total{route="/v1/kv/{key}",method="OTHER",status="405"} 1');
    expect(text).toContain('hearsay_http_requests_total{route="unmatched",method="GET",status="404"} 1');
    expect(text).toMatch(/hearsay_http_request_duration_seconds_bucket\{le="\+Inf",route="\/v1\/kv\/\{key\}",method="PUT",status="204"\} 2/);
    expect(text).toContain('hearsay_storage_keys 1\n');
    expect(text).toContain('hearsay_storage_tombstones 1\n');
  });

  it('serves an OpenAPI 3.1 document of every route, each code under the status it answers with', async () => {
    const response = await request('/v1/openapi.json');
    expect(response.status).toBe(200);
    type ErrorSchema = { allOf?: [unknown, { properties: { error: { properties: { code: { enum: string[] } } } } }] };
    const doc = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: ErrorSchema }> }> }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/metrics',
      '/v1/admin/decommission',
      '/v1/admin/remove/{node}',
      '/v1/cluster',
      '/v1/health',
      '/v1/kv',
      '/v1/kv/{key}',
      '/v1/openapi.json',
      '/v1/repair',
    ]);
    expect(Object.keys(doc.paths['/v1/kv/{key}']!).sort()).toEqual(['delete', 'get', 'head', 'options', 'put']);
    const declared = new Set<string>();
    for (const item of Object.values(doc.paths)) {
      for (const operation of Object.values(item)) {
        for (const [status, answer] of Object.entries(operation.responses)) {
          for (const code of answer.content?.['application/json']?.schema.allOf?.[1].properties.error.properties.code.enum ?? []) {
            expect(HTTP_ERROR_STATUS[code as keyof typeof HTTP_ERROR_STATUS], code).toBe(Number(status));
            declared.add(code);
          }
        }
      }
    }
    // Every code but the ones no route can answer: store codes the app's own checks come first to. (ROUTE_NOT_FOUND
    // is also the admin routes' answer on a node without membership operations.)
    const unreachable = ['INVALID_KEY', 'INVALID_ARGUMENT'];
    expect([...declared].sort()).toEqual(Object.keys(HTTP_ERROR_STATUS).filter((code) => !unreachable.includes(code)).sort());
  });
});
