/**
 * Malformed requests against a running node: the app on @hono/node-server,
 * listening on 127.0.0.1 port 0 in this process. Raw `node:net` sockets send
 * bytes no client would (bad request lines, framing, headers); `fetch` sends
 * the odd-but-sendable rest. Every answer is a well-formed HTTP response
 * below 500, and the node still serves correct reads afterwards. Seeded;
 * set HEARSAY_FUZZ_SEED to replay a failure.
 */
import { getRequestListener } from '@hono/node-server';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardServer, requestErrorResponse } from '../src/server-guards.ts';
import { openLocalNode, type LocalNode } from './local-node.ts';
import { createRng, describeFetchCase, describeRawCase, fetchRequest, rawRequest, SENTINEL_PREFIX, type RawCase } from './malformed.ts';
import { answersOf, errorCodeOf, exchange as exchangeOver, inParallel as inParallelOf } from './raw-http.ts';

const SEED = Number(process.env['HEARSAY_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const RAW_CASES = 1000;
const FETCH_CASES = 1200;
const PARALLEL = 16;
/** A deadline per exchange, not a sleep: a healthy node answers in milliseconds. */
const EXCHANGE_DEADLINE_MS = 10_000;

let node: LocalNode;
let server: Server;
let base: string;
let port: number;

beforeAll(async () => {
  node = await openLocalNode({ limits: { maxValueBytes: 4096 } });
  // As packages/cli sets a node up: node:http, Hono's request listener with JSON request errors, the guards.
  server = createServer(getRequestListener(node.app.fetch, { errorHandler: requestErrorResponse }));
  guardServer(server, node.app.limits);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await node.close();
});

/** Sends the bytes over a plain TCP connection and collects the answer (raw-http.ts). */
const exchange = (bytes: Uint8Array): Promise<Buffer> => exchangeOver(() => connect({ host: '127.0.0.1', port }), bytes, EXCHANGE_DEADLINE_MS);
const inParallel = (count: number, run: (i: number) => Promise<void>): Promise<void> => inParallelOf(PARALLEL, count, run);

it(`raw malformed HTTP and odd fetches get well-formed answers below 500 (seed ${SEED})`, async () => {
  const rng = createRng(SEED);
  const sentinel = `${SENTINEL_PREFIX}${SEED}/value`;
  expect((await fetch(`${base}/v1/kv/${sentinel}`, { method: 'PUT', body: 'kept', headers: { 'content-type': 'text/x-kept' } })).status).toBe(204);

  const rawCases: RawCase[] = Array.from({ length: RAW_CASES }, () => rawRequest(rng));
  const silentKinds = new Map<string, number>();
  await inParallel(rawCases.length, async (i) => {
    const c = rawCases[i]!;
    const where = `seed=${SEED} raw case ${i} ${describeRawCase(c)}`;
    const answer = await exchange(c.bytes);
    if (answer.byteLength === 0) {
      // Only requests cut short may go unanswered (the server waits for the rest, then sees the close).
      expect(c.incomplete, `${where}: no answer`).toBe(true);
      silentKinds.set(c.kind, (silentKinds.get(c.kind) ?? 0) + 1);
      return;
    }
    const answers = answersOf(answer);
    if (typeof answers === 'string') expect.fail(`${where}: ${answers}`);
    for (const { status, body } of answers) {
      expect(status, `${where}: ${answer.toString('latin1').slice(0, 300)}`).toBeLessThan(500);
      if (status >= 400 && body !== undefined && body.length > 0) expect(errorCodeOf(body), `${where}: ${body.slice(0, 200)}`).toBeDefined();
    }
  });

  const fetchCases = Array.from({ length: FETCH_CASES }, () => fetchRequest(rng));
  await inParallel(fetchCases.length, async (i) => {
    const c = fetchCases[i]!;
    const where = `seed=${SEED} fetch case ${i} ${describeFetchCase(c)}`;
    let response: Response;
    try {
      response = await fetch(`${base}${c.path}`, { method: c.method, headers: c.headers.map(([name, value]): [string, string] => [name, value]), body: c.body });
    } catch (error) {
      // fetch refuses some requests before sending (bad header values, forbidden methods): not the node's answer.
      if (error instanceof TypeError && !String((error as { cause?: unknown }).cause ?? '').includes('ECONNRESET')) return;
      throw new Error(`${where}: ${String(error)}`, { cause: error });
    }
    expect(response.status, where).toBeLessThan(500);
    await response.arrayBuffer();
  });

  const kept = await fetch(`${base}/v1/kv/${sentinel}`);
  expect(kept.status, `seed=${SEED}`).toBe(200);
  expect(kept.headers.get('content-type')).toBe('text/x-kept');
  expect(kept.headers.get('content-length')).toBe('4');
  expect(kept.headers.get('etag')).toMatch(/^".+"$/);
  const head = await fetch(`${base}/v1/kv/${sentinel}`, { method: 'HEAD' });
  expect(head.headers.get('content-length')).toBe('4');
  expect(await kept.text()).toBe('kept');
  expect((await fetch(`${base}/v1/kv/after/fuzz`, { method: 'PUT', body: 'fresh' })).status).toBe(204);
  expect(await (await fetch(`${base}/v1/kv/after/fuzz`)).text()).toBe('fresh');
  expect((await fetch(`${base}/v1/health`)).status).toBe(200);
});

describe('guardServer', () => {
  const bodyOf = (answer: Buffer): { error: { code: string } } => JSON.parse(answer.toString('latin1').split('\r\n\r\n')[1]!) as { error: { code: string } };

  it('answers CONNECT with 405 JSON instead of dropping the connection', async () => {
    const answer = await exchange(Buffer.from('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(bodyOf(answer).error.code).toBe('METHOD_NOT_ALLOWED');
  });

  it('answers requests node-server cannot read (backslash path, bad Host) with a JSON error', async () => {
    for (const head of ['GET /v1/kv/a\\b HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /v1/health HTTP/1.1\r\nHost: a b\r\n\r\n']) {
      const answer = await exchange(Buffer.from(head));
      expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
      expect(bodyOf(answer).error.code).toBe('MALFORMED_REQUEST');
    }
  });

  it('answers what the parser refuses with a JSON error', async () => {
    const garbage = await exchange(Buffer.from('GET /v1/health HTTP/9.9\r\n\r\n'));
    expect(garbage.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(garbage).error.code).toBe('MALFORMED_REQUEST');
    const big = await exchange(Buffer.from(`GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`));
    expect(big.toString('latin1')).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(big).error.code).toBe('HEADERS_TOO_LARGE');
  });
});

describe('guardServer and Expect: 100-continue', () => {
  it('refuses a declared oversize body without inviting it', async () => {
    const answer = await exchange(Buffer.from('PUT /v1/kv/expect/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n'));
    const text = answer.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).not.toContain('100 Continue');
    expect(text).toContain('"VALUE_TOO_LARGE"');
  });

  it('says 100 Continue to a body within the limit, then stores it', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      let received = '';
      let sentBody = false;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer within ${EXCHANGE_DEADLINE_MS} ms: ${received}`));
      }, EXCHANGE_DEADLINE_MS);
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        if (!sentBody && received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
          sentBody = true;
          socket.end('abc');
        }
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(received);
      });
      socket.write('PUT /v1/kv/expect/small HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n');
    });
    expect(text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 204 /);
    expect(await (await fetch(`${base}/v1/kv/expect/small`)).text()).toBe('abc');
  });
});
