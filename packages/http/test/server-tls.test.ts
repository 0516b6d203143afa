/**
 * The app behind HTTPS with client tokens, set up as packages/cli sets a
 * node up (node:https, Hono's listener, limitServer, guardServer), with a
 * certificate openssl makes for the test: seeded raw malformed requests over
 * TLS (most with a valid token, the rest none or a bad one) all get
 * well-formed answers below 500 and the node still serves; a request without
 * a token declaring a large body is answered 401 and its connection closed
 * without the body being read; and the connection cap tracks TLS
 * connections by their requests (an active one is never taken for a waiting
 * one). Seeded; set HEARSAY_FUZZ_SEED to replay a failure.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadLimits } from '../src/load-limits.ts';
import { guardServer, requestErrorResponse } from '../src/server-guards.ts';
import { DEFAULT_SERVER_LIMITS, limitServer } from '../src/server-limits.ts';
import { createToken, parseAuthFile } from '../src/tokens.ts';
import { openLocalNode, type LocalNode } from './local-node.ts';
import { createRng, describeRawCase, rawRequest, SENTINEL_PREFIX } from './malformed.ts';
import { answersOf, errorCodeOf, exchange, inParallel } from './raw-http.ts';

const SEED = Number(process.env['HEARSAY_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const RAW_CASES = 500;
const DEADLINE_MS = 10_000;

const admin = createToken({ scopes: ['admin'] });
const reader = createToken({ scopes: ['read'], prefixes: ['a'] });

let dir: string;
let ca: Buffer;
let node: LocalNode;
let server: Server;
let load: LoadLimits;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hearsay-server-tls-'));
  // One self-signed certificate for 127.0.0.1 (docs/security.md makes a CA and node certificates the same way).
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  ca = readFileSync(join(dir, 'cert.pem'));
  load = new LoadLimits({ maxBodyBytesInFlight: 1 << 20 });
  node = await openLocalNode({ limits: { maxValueBytes: 4096 }, load, auth: parseAuthFile(`${admin.line}\n${reader.line}\n`) });
  server = createHttpsServer(
    { cert: ca, key: readFileSync(join(dir, 'key.pem')) },
    getRequestListener(node.app.fetch, { errorHandler: requestErrorResponse, autoCleanupIncoming: false }),
  ) as Server;
  limitServer(server as never, { ...DEFAULT_SERVER_LIMITS, maxConnections: 64 }, load);
  guardServer(server as never, { maxValueBytes: 4096, load });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await node.close();
  rmSync(dir, { recursive: true, force: true });
});

const tlsConnect = (): TLSSocket => connect({ host: '127.0.0.1', port, ca });
const send = (bytes: Uint8Array | string): Promise<Buffer> => exchange(tlsConnect, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, DEADLINE_MS);
const authorized = (head: string, token = admin.token): string => head.replace('\r\n', `\r\nAuthorization: Bearer ${token}\r\n`);

it(`raw malformed HTTP over TLS, with and without tokens, gets well-formed answers below 500 (seed ${SEED})`, async () => {
  const rng = createRng(SEED);
  const sentinel = `${SENTINEL_PREFIX}${SEED}/tls`;
  const stored = answersOf(await send(authorized(`PUT /v1/kv/${sentinel} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nkept`)));
  expect(stored).toEqual([{ status: 204, body: undefined }]);

  const tokens = [admin.token, admin.token, reader.token];
  const statuses = new Map<number, number>();
  await inParallel(16, RAW_CASES, async (i) => {
    const c = rawRequest(rng, tokens);
    const where = `seed=${SEED} raw case ${i} ${describeRawCase(c)}`;
    const answer = await send(c.bytes);
    if (answer.byteLength === 0) {
      expect(c.incomplete, `${where}: no answer`).toBe(true);
      return;
    }
    const answers = answersOf(answer);
    if (typeof answers === 'string') expect.fail(`${where}: ${answers}`);
    for (const { status, body } of answers) {
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      expect(status, `${where}: ${answer.toString('latin1').slice(0, 300)}`).toBeLessThan(500);
      if (status >= 400 && body !== undefined && body.length > 0) expect(errorCodeOf(body), `${where}: ${body.slice(0, 200)}`).toBeDefined();
    }
  });
  // The cases reached the routes and the refusals both. Refusals (400) are most cases. A 200 or a 401 needs a case that
  // parses on a route with (or without) a valid token: 3 to 25 of 500 for 401 over seeds, and seeds gave as few as 10
  // answers of 200, so only their presence is asked for.
  expect(statuses.get(400) ?? 0, `seed=${SEED} status 400: ${JSON.stringify([...statuses])}`).toBeGreaterThan(10);
  for (const status of [200, 401]) expect(statuses.get(status) ?? 0, `seed=${SEED} status ${status}: ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);

  const kept = answersOf(await send(authorized(`GET /v1/kv/${sentinel} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)));
  expect(kept).toEqual([{ status: 200, body: 'kept' }]);
  const health = answersOf(await send('GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
  expect(health).toMatchObject([{ status: 200 }]);
});

describe('over TLS', () => {
  it('answers a request without a token 401 from its head and closes, never reading its declared 50 MB body', async () => {
    const socket = tlsConnect();
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    const bodyBefore = load.bodyBytesInFlight;
    socket.write('PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n');
    socket.write(Buffer.alloc(1024));
    await closed; // closed by the server: the test never sends the rest
    expect(received).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(received).toMatch(/\r\nconnection: close\r\n/i);
    expect(received).toContain('"code":"UNAUTHENTICATED"');
    expect(load.bodyBytesInFlight).toBe(bodyBefore);
  });

  it('counts connections by their requests: at the cap, a connection with a request in progress is never the one closed', async () => {
    const capped = createHttpsServer({ cert: ca, key: readFileSync(join(dir, 'key.pem')) }, getRequestListener(node.app.fetch, { errorHandler: requestErrorResponse, autoCleanupIncoming: false })) as Server;
    const cappedLoad = new LoadLimits({ maxBodyBytesInFlight: 1 << 20 });
    limitServer(capped as never, { ...DEFAULT_SERVER_LIMITS, maxConnections: 2 }, cappedLoad);
    await new Promise<void>((resolve) => capped.listen(0, '127.0.0.1', resolve));
    const cappedPort = (capped.address() as AddressInfo).port;
    const open = async (): Promise<{ socket: TLSSocket; received: () => string; closed: Promise<void> }> => {
      const socket = connect({ host: '127.0.0.1', port: cappedPort, ca });
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('error', () => {});
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
      return { socket, received: () => text, closed };
    };
    try {
      // The oldest connection has a request in progress (its body still arriving); the next one is idle.
      const active = await open();
      // The app (shared with the fuzz server) takes the body from its own budget.
      const before = load.bodyBytesInFlight;
      active.socket.write(authorized('PUT /v1/kv/held HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabc'));
      const end = Date.now() + DEADLINE_MS;
      while (load.bodyBytesInFlight !== before + 6) {
        if (Date.now() > end) throw new Error('the request was never read');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const waiting = await open();
      // A third connection at the cap of two: the waiting one makes room, not the active one.
      const third = await open();
      await waiting.closed;
      expect(cappedLoad.evictions('no_request_yet')).toBe(1);
      active.socket.write('def');
      await active.closed;
      expect(active.received()).toMatch(/^HTTP\/1\.1 204 /);
      third.socket.destroy();
    } finally {
      capped.closeAllConnections();
      await new Promise((resolve) => capped.close(resolve));
    }
  });
});
