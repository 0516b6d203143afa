import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HearsayClient, HearsayError, encodeKeyPath, type FetchLike } from '../src/index.ts';

interface Sent {
  readonly method: string;
  readonly url: URL;
  readonly headers: Headers;
  readonly body: string | undefined;
}

/** A fetch that records each request and answers with the next of `answers`. */
function fakeFetch(...answers: ((sent: Sent) => Response)[]): { fetch: FetchLike; sent: Sent[] } {
  const sent: Sent[] = [];
  const fetch: FetchLike = async (input, init) => {
    const request = new Request(input, init);
    const body = init.body === undefined ? undefined : await request.text();
    const entry: Sent = { method: request.method, url: new URL(request.url), headers: request.headers, body };
    sent.push(entry);
    const answer = answers.shift();
    if (answer === undefined) throw new Error(`unexpected request ${request.method} ${request.url}`);
    return answer(entry);
  };
  return { fetch, sent };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const errorAnswer = (status: number, code: string, message: string, details: Record<string, unknown> = {}): Response =>
  json(status, { error: { code, message, ...details } });

async function caught(promise: Promise<unknown>): Promise<HearsayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HearsayError) return error;
    throw error;
  }
  throw new Error('expected a HearsayError');
}

describe('encodeKeyPath', () => {
  it.each([
    ['plain', 'plain'],
    ['a/b/c', 'a/b/c'],
    ['with space?#&=%', 'with%20space%3F%23%26%3D%25'],
    ['ünïcødé/🙂', '%C3%BCn%C3%AFc%C3%B8d%C3%A9/%F0%9F%99%82'],
    ['a/../b', 'a%2F..%2Fb'],
    ['./x', '.%2Fx'],
    ['a//b/', 'a//b/'],
  ])('%j -> %s', (key, path) => {
    expect(encodeKeyPath(key)).toBe(path);
    // The server percent-decodes the whole path back into the key.
    expect(decodeURIComponent(path)).toBe(key);
  });

  it('refuses keys the API cannot carry', () => {
    expect(() => encodeKeyPath('')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => encodeKeyPath('bad\uD800')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('keeps dot segments from being resolved by the URL parser', () => {
    const url = new URL(`http://node/v1/kv/${encodeKeyPath('a/../b')}`);
    expect(url.pathname).toBe('/v1/kv/a%2F..%2Fb');
  });
});

describe('HearsayClient', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gets a value with its etag and content type, sending the consistency level', async () => {
    const { fetch, sent } = fakeFetch(() => new Response('hello', { status: 200, headers: { etag: '"v1"', 'content-type': 'text/plain' } }));
    const client = new HearsayClient({ baseUrl: 'http://node:7000/', fetch, consistency: 'all' });
    const entry = await client.get('dir/a b', { consistency: 'one' });
    expect(sent[0]?.method).toBe('GET');
    expect(sent[0]?.url.pathname).toBe('/v1/kv/dir/a%20b');
    expect(sent[0]?.url.searchParams.get('consistency')).toBe('one');
    expect(entry).toMatchObject({ notModified: false, key: 'dir/a b', etag: '"v1"', contentType: 'text/plain' });
    expect(entry?.text()).toBe('hello');
  });

  it('uses the client default consistency, and sends none when there is none', async () => {
    const answer = (): Response => new Response(null, { status: 404 });
    const withDefault = fakeFetch(answer);
    await new HearsayClient({ fetch: withDefault.fetch, consistency: 'quorum' }).get('k');
    expect(withDefault.sent[0]?.url.searchParams.get('consistency')).toBe('quorum');
    const without = fakeFetch(answer);
    await new HearsayClient({ fetch: without.fetch }).get('k');
    expect(without.sent[0]?.url.search).toBe('');
  });

  it('answers undefined for a missing key and NotModified for a matching If-None-Match', async () => {
    const { fetch, sent } = fakeFetch(
      () => errorAnswer(404, 'NOT_FOUND', 'no such key'),
      () => new Response(null, { status: 304, headers: { etag: '"v1"' } }),
    );
    const client = new HearsayClient({ fetch });
    expect(await client.get('missing')).toBeUndefined();
    expect(await client.get('k', { ifNoneMatch: '"v1"' })).toEqual({ notModified: true, key: 'k', etag: '"v1"' });
    expect(sent[1]?.headers.get('if-none-match')).toBe('"v1"');
  });

  it('heads a key: etag, content type and size without the value', async () => {
    const { fetch, sent } = fakeFetch(
      () => new Response(null, { status: 200, headers: { etag: '"v2"', 'content-type': 'application/json', 'content-length': '42' } }),
      () => new Response(null, { status: 404 }),
    );
    const client = new HearsayClient({ fetch });
    expect(await client.head('k')).toEqual({ key: 'k', etag: '"v2"', contentType: 'application/json', size: 42 });
    expect(sent[0]?.method).toBe('HEAD');
    expect(await client.head('gone')).toBeUndefined();
  });

  it('sends a token as Authorization: Bearer with every request, over headers of the same name', async () => {
    const { fetch, sent } = fakeFetch(
      () => new Response('v', { status: 200, headers: { etag: '"v1"' } }),
      () => json(200, { ok: true }),
    );
    const token = `hs1.app.${'A'.repeat(43)}`;
    const client = new HearsayClient({ fetch, token, headers: { authorization: 'Basic x', 'x-trace': '1' } });
    await client.get('k');
    await client.health();
    for (const request of sent) {
      expect(request.headers.get('authorization')).toBe(`Bearer ${token}`);
      expect(request.headers.get('x-trace')).toBe('1');
    }
  });

  it('refuses a token that a header cannot carry', () => {
    for (const token of ['', 'has space', 'line\nbreak', 'ünï']) {
      expect(() => new HearsayClient({ token })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('puts with a default content type by value kind and the conditional headers', async () => {
    const noContent = (etag: string) => () => new Response(null, { status: 204, headers: { etag } });
    const { fetch, sent } = fakeFetch(noContent('"a"'), noContent('"b"'), noContent('"c"'));
    const client = new HearsayClient({ fetch });
    expect(await client.put('k', 'text')).toEqual({ etag: '"a"' });
    expect(await client.put('k', new Uint8Array([1, 2]), { ifMatch: '"a"' })).toEqual({ etag: '"b"' });
    expect(await client.put('k', '{}', { contentType: 'application/json', ifNoneMatch: '*' })).toEqual({ etag: '"c"' });
    expect(sent.map((s) => s.method)).toEqual(['PUT', 'PUT', 'PUT']);
    expect(sent[0]?.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(sent[0]?.body).toBe('text');
    expect(sent[1]?.headers.get('content-type')).toBe('application/octet-stream');
    expect(sent[1]?.headers.get('if-match')).toBe('"a"');
    expect(sent[2]?.headers.get('content-type')).toBe('application/json');
    expect(sent[2]?.headers.get('if-none-match')).toBe('*');
  });

  it("carries the server's code, status, message and details in HearsayError", async () => {
    const { fetch } = fakeFetch(
      () => errorAnswer(412, 'PRECONDITION_FAILED', 'If-Match does not hold'),
      () => errorAnswer(503, 'INSUFFICIENT_REPLICAS', '2 of 3 replicas required, 1 acknowledged', { acknowledged: 1, required: 2 }),
      () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    );
    const client = new HearsayClient({ fetch });
    const precondition = await caught(client.put('k', 'v', { ifMatch: '"old"' }));
    expect(precondition).toMatchObject({ code: 'PRECONDITION_FAILED', status: 412, message: 'If-Match does not hold' });
    const replicas = await caught(client.delete('k'));
    expect(replicas).toMatchObject({ code: 'INSUFFICIENT_REPLICAS', status: 503, details: { acknowledged: 1, required: 2 } });
    const proxy = await caught(client.get('k'));
    expect(proxy.code).toBe('HTTP_502');
    expect(proxy.message).toContain('bad gateway');
  });

  it('lists one page, and every page with listAll', async () => {
    const page = (keys: string[], next: string | null) => () => json(200, { items: keys.map((key) => ({ key, etag: `"${key}"`, size: 1 })), next });
    const { fetch, sent } = fakeFetch(page(['a'], null), page(['p1', 'p2'], 'c1'), page(['p3'], 'c2'), page([], null));
    const client = new HearsayClient({ fetch });
    expect(await client.list({ prefix: 'a', limit: 5 })).toEqual({ items: [{ key: 'a', etag: '"a"', size: 1 }], next: null });
    expect(sent[0]?.url.search).toBe('?prefix=a&limit=5');
    const keys: string[] = [];
    for await (const item of client.listAll({ prefix: 'p', limit: 2 })) keys.push(item.key);
    expect(keys).toEqual(['p1', 'p2', 'p3']);
    expect(sent.slice(1).map((s) => s.url.searchParams.get('cursor'))).toEqual([null, 'c1', 'c2']);
  });

  it('refuses answers that are not in the shape of API v1', async () => {
    const { fetch } = fakeFetch(
      () => json(200, { keys: [] }),
      () => new Response('not json', { status: 200 }),
      () => new Response('v', { status: 200 }),
    );
    const client = new HearsayClient({ fetch });
    expect((await caught(client.list())).code).toBe('BAD_RESPONSE');
    expect((await caught(client.cluster())).code).toBe('BAD_RESPONSE');
    expect((await caught(client.get('no-etag'))).code).toBe('BAD_RESPONSE');
  });

  it('reads cluster, health (and its 503), and metrics', async () => {
    const cluster = { self: 'n1', members: [{ id: 'n1', state: 'alive', http: 'http://x', gossip: '', incarnation: 0 }] };
    const { fetch } = fakeFetch(
      () => json(200, cluster),
      () => json(200, { ok: true, nodeId: 'n1' }),
      () => errorAnswer(503, 'NOT_SERVING', 'draining'),
      () => new Response('# HELP x\nx 1\n', { status: 200 }),
    );
    const client = new HearsayClient({ fetch });
    expect(await client.cluster()).toEqual(cluster);
    expect(await client.health()).toEqual({ ok: true, nodeId: 'n1' });
    expect(await caught(client.health())).toMatchObject({ code: 'NOT_SERVING', status: 503, message: 'draining' });
    expect(await client.metrics()).toContain('x 1');
  });

  it('streams repair progress lines split across chunks, ending with the summary', async () => {
    const summary = { type: 'summary', inSync: true, rangesCompared: 2, keysSent: 0, keysReceived: 0, bytesSent: 0, bytesReceived: 0, durationMs: 3 };
    const text = `${JSON.stringify({ type: 'progress', done: 1, total: 2 })}\n\n${JSON.stringify(summary)}`;
    const bytes = new TextEncoder().encode(text);
    const chunks = [bytes.slice(0, 7), bytes.slice(7, 40), bytes.slice(40)];
    const stream = () => new ReadableStream<Uint8Array>({ start(controller) { for (const chunk of chunks) controller.enqueue(chunk); controller.close(); } });
    const { fetch, sent } = fakeFetch(() => new Response(stream(), { status: 200, headers: { 'content-type': 'application/x-ndjson' } }));
    const lines = [];
    for await (const line of new HearsayClient({ fetch }).repair()) lines.push(line);
    expect(sent[0]?.method).toBe('POST');
    expect(sent[0]?.url.pathname).toBe('/v1/repair');
    expect(lines).toEqual([{ type: 'progress', done: 1, total: 2 }, summary]);
  });

  it('fails a repair stream that ends without a summary or carries a bad line', async () => {
    const { fetch } = fakeFetch(
      () => new Response('{"type":"progress","done":1,"total":2}\n', { status: 200 }),
      () => new Response('{"type":"progress"\n', { status: 200 }),
      () => errorAnswer(409, 'CONFLICT', 'a repair is already running'),
    );
    const client = new HearsayClient({ fetch });
    const drain = async (): Promise<void> => {
      for await (const _line of client.repair()) {
        // consume
      }
    };
    expect((await caught(drain())).code).toBe('BAD_RESPONSE');
    expect((await caught(drain())).code).toBe('BAD_RESPONSE');
    expect(await caught(drain())).toMatchObject({ code: 'CONFLICT', status: 409 });
  });

  it('reports a refused connection as NETWORK_ERROR with status 0', async () => {
    const port = await closedPort();
    const error = await caught(new HearsayClient({ baseUrl: `http://127.0.0.1:${port}` }).get('k'));
    expect(error).toMatchObject({ code: 'NETWORK_ERROR', status: 0 });
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('times out with TIMEOUT and reports a caller abort as ABORTED', async () => {
    const hanging: FetchLike = (_input, init) =>
      new Promise((_resolve, reject) => init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
    vi.useFakeTimers();
    const timedOut = caught(new HearsayClient({ fetch: hanging, timeoutMs: 1_000 }).get('k'));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await timedOut).toMatchObject({ code: 'TIMEOUT', status: 0 });
    const controller = new AbortController();
    const aborted = caught(new HearsayClient({ fetch: hanging }).get('k', { signal: controller.signal }));
    controller.abort();
    expect(await aborted).toMatchObject({ code: 'ABORTED', status: 0 });
  });
});

/** A port nothing listens on: bind one, then free it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}
