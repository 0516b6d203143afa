/**
 * The limits a node puts on what clients can hold: the request-body budget
 * and load shedding (`LoadLimits`, through the app), and the connection cap,
 * keep-alive and timeouts of `limitServer` on a real `node:http` server on
 * 127.0.0.1 port 0 in this process, as packages/cli sets a node up. Waits
 * are for events (a response, a socket closing) under a deadline, never a
 * fixed sleep.
 */
import { getRequestListener } from '@hono/node-server';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_DISCARD_BYTES } from '../src/body.ts';
import { LoadLimits } from '../src/load-limits.ts';
import { guardServer, requestErrorResponse } from '../src/server-guards.ts';
import { DEFAULT_SERVER_LIMITS, KEEP_ALIVE_GRACE_MS, limitServer, validateServerLimits, type ServerLimits } from '../src/server-limits.ts';
import { openLocalNode, type LocalNode } from './local-node.ts';

const DEADLINE_MS = 15_000;

describe('LoadLimits', () => {
  it('reserves body bytes up to the cap, refuses past it, and counts the refusal', () => {
    let now = 0;
    const load = new LoadLimits({ maxBodyBytesInFlight: 100, sheddingWindowMs: 1000, clock: { now: () => now } });
    expect(load.reserveBody(60)).toBe(true);
    expect(load.reserveBody(40)).toBe(true);
    expect(load.bodyBytesInFlight).toBe(100);
    expect(load.shedding()).toBeUndefined();
    expect(load.reserveBody(1)).toBe(false);
    expect(load.refusals('body_bytes_in_flight')).toBe(1);
    expect(load.shedding()).toContain('body_bytes_in_flight');
    load.releaseBody(60);
    expect(load.reserveBody(50)).toBe(true);
    now = 1001;
    expect(load.shedding()).toBeUndefined();
    // A slow client timing out is not load.
    load.refused('request_timeout');
    load.refused('stall_timeout');
    expect(load.shedding()).toBeUndefined();
    load.refused('busy');
    expect(load.shedding()).toContain('busy');
    expect(() => load.releaseBody(1000)).toThrow(/released more/);
  });

  it('exposes its figures as metrics', async () => {
    const load = new LoadLimits({ maxBodyBytesInFlight: 100 });
    const registry = new Registry();
    load.register(registry);
    load.reserveBody(30);
    load.refused('connections');
    load.evicted('idle');
    const text = await registry.metrics();
    expect(text).toContain('hearsay_http_body_bytes_in_flight 30');
    expect(text).toContain('hearsay_http_body_bytes_in_flight_max 100');
    expect(text).toContain('hearsay_http_limit_refusals_total{limit="connections"} 1');
    expect(text).toContain('hearsay_http_limit_refusals_total{limit="busy"} 0');
    expect(text).toContain('hearsay_http_connections_evicted_total{reason="idle"} 1');
  });

  it.each<[Partial<ServerLimits>, RegExp]>([
    [{ maxConnections: 0 }, /maxConnections/],
    [{ idleTimeoutMs: 10 }, /idleTimeoutMs/],
    [{ headersTimeoutMs: 40_000 }, /headersTimeoutMs must not exceed/],
    [{ stallTimeoutMs: 1.5 }, /stallTimeoutMs/],
  ])('validateServerLimits refuses %j', (change, message) => {
    expect(() => validateServerLimits({ ...DEFAULT_SERVER_LIMITS, ...change })).toThrow(message);
  });
});

describe('the app with load limits', () => {
  let node: LocalNode | undefined;
  afterEach(async () => {
    await node?.close();
    node = undefined;
  });

  it('refuses a PUT whose body would pass the budget with 503 BUSY and Retry-After, and reports shedding in /v1/health', async () => {
    const load = new LoadLimits({ maxBodyBytesInFlight: 6000 });
    node = await openLocalNode({ limits: { maxValueBytes: 4096 }, load });
    // A chunked PUT holds the whole value limit while it is read.
    let release: (() => void) | undefined;
    const slow = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise<void>((resolve) => (release = resolve));
        controller.enqueue(new Uint8Array(10));
        controller.close();
      },
    });
    const first = node.app.request('/v1/kv/a', { method: 'PUT', body: slow, duplex: 'half' } as RequestInit);
    await until(() => load.bodyBytesInFlight === 4096);
    const refused = await node.app.request('/v1/kv/b', { method: 'PUT', body: new Uint8Array(3000), headers: { 'content-length': '3000' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('BUSY');
    // One that fits goes through meanwhile.
    const fits = await node.app.request('/v1/kv/c', { method: 'PUT', body: new Uint8Array(1000), headers: { 'content-length': '1000' } });
    expect(fits.status, await fits.clone().text()).toBe(204);
    const health = await node.app.request('/v1/health');
    expect(health.status).toBe(503);
    const body = (await health.json()) as { error: { code: string; message: string; shedding: boolean } };
    expect(body.error).toMatchObject({ code: 'NOT_SERVING', shedding: true });
    expect(body.error.message).toContain('shedding load');
    release!();
    expect((await first).status).toBe(204);
    expect(load.bodyBytesInFlight).toBe(0);
    expect(load.refusals('body_bytes_in_flight')).toBe(1);
    // An over-limit body is refused as too large, whatever the budget says, and holds none of it.
    const tooLarge = await node.app.request('/v1/kv/d', { method: 'PUT', body: new Uint8Array(5000), headers: { 'content-length': '5000' } });
    expect(tooLarge.status).toBe(413);
  });

  it('answers /v1/health 503 with the reason of a failing health check', async () => {
    let problem: string | undefined = 'the disk of the data dir is full';
    node = await openLocalNode({ healthChecks: [() => problem] });
    const failing = await node.app.request('/v1/health');
    expect(failing.status).toBe(503);
    expect(failing.headers.get('retry-after')).toBe('1');
    expect(((await failing.json()) as { error: { message: string } }).error.message).toBe('the disk of the data dir is full');
    problem = undefined;
    expect((await node.app.request('/v1/health')).status).toBe(200);
  });
});

describe('limitServer on a real server', () => {
  let node: LocalNode | undefined;
  let server: Server | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise((resolve) => server!.close(resolve));
    }
    await node?.close();
    node = server = undefined;
  });

  async function serve(limits: Partial<ServerLimits>, load = new LoadLimits({ maxBodyBytesInFlight: 1 << 20 })): Promise<{ url: string; port: number; load: LoadLimits }> {
    node = await openLocalNode({ limits: { maxValueBytes: 4096 }, load });
    server = createServer(getRequestListener(node.app.fetch, { errorHandler: requestErrorResponse, autoCleanupIncoming: false }));
    limitServer(server, { ...DEFAULT_SERVER_LIMITS, ...limits }, load);
    guardServer(server, { maxValueBytes: 4096, load });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return { url: `http://127.0.0.1:${port}`, port, load };
  }

  /** A raw connection, with everything it receives and when it closed. */
  async function open(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<number> }> {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => {});
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, received: () => text, closed };
  }

  it('at the connection cap, closes the oldest connection that sent no request to serve a new one; refuses only when every slot is busy', async () => {
    const { url, port, load } = await serve({ maxConnections: 3 });
    const headless = [await open(port), await open(port), await open(port)];
    headless[1]!.socket.write('GET /v1/hea'); // a head still arriving
    await until(() => load.connections === 3);
    // A client is still served: the oldest headless connection makes room.
    const response = await fetch(`${url}/v1/health`, { headers: { connection: 'close' } });
    expect(response.status).toBe(200);
    await headless[0]!.closed;
    expect(load.evictions('no_request_yet')).toBeGreaterThanOrEqual(1);
    expect(load.refusals('connections')).toBe(0);

    // Every slot with a request in progress (bodies still arriving): a new connection is refused with 503.
    for (const h of headless) h.socket.destroy();
    await until(() => load.connections === 0);
    const busy = [await open(port), await open(port), await open(port)];
    for (const b of busy) b.socket.write('PUT /v1/kv/held HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
    await until(() => load.bodyBytesInFlight === 300); // the three are being read
    expect(load.connections).toBe(3);
    const refused = await open(port);
    await refused.closed;
    expect(refused.received()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(refused.received()).toContain('Retry-After: 1');
    expect(refused.received()).toContain('"code":"BUSY"');
    expect(load.refusals('connections')).toBe(1);
  });

  it('advertises the idle timeout in Keep-Alive but closes an idle connection only the grace later', async () => {
    const { port } = await serve({ idleTimeoutMs: 1000 });
    const c = await open(port);
    c.socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.received().includes('"status":"ok"'));
    const answeredAt = performance.now();
    expect(c.received()).toContain('Keep-Alive: timeout=1\r\n');
    const closedAt = await withDeadline(c.closed);
    // A client reuses the connection until about 1 s before the advertised timeout; it stays open 2 s past it.
    expect(closedAt - answeredAt).toBeGreaterThanOrEqual(1000 + KEEP_ALIVE_GRACE_MS - 200);
  });

  it('answers a request head that does not arrive in time with 408, and counts it', async () => {
    const { port, load } = await serve({ headersTimeoutMs: 1000, receiveTimeoutMs: 1000 });
    const c = await open(port);
    c.socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n');
    await withDeadline(c.closed);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(load.refusals('request_timeout')).toBe(1);
  });

  it('closes a connection on which nothing moves for the stall timeout, before the head timeout', async () => {
    const { port } = await serve({ stallTimeoutMs: 1000, headersTimeoutMs: 20_000, receiveTimeoutMs: 20_000 });
    const c = await open(port);
    const sentAt = performance.now();
    c.socket.write('GET /v1/health HTTP/1.1\r\n');
    const closedAt = await withDeadline(c.closed);
    expect(closedAt - sentAt).toBeLessThan(10_000);
    expect(closedAt - sentAt).toBeGreaterThanOrEqual(900);
  });

  it('keeps the connection of a 413 by Content-Length open and throws the body away, so the client reads the answer and can go on', async () => {
    const { port } = await serve({});
    const c = await open(port);
    c.socket.write('PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n');
    await until(() => c.received().includes('VALUE_TOO_LARGE'));
    expect(c.received()).not.toMatch(/connection: close/i);
    c.socket.write(Buffer.alloc(200_000, 1));
    c.socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.received().includes('"status":"ok"'));
  });

  it('closes the connection once a body nobody reads passes MAX_DISCARD_BYTES', async () => {
    const { port } = await serve({});
    const c = await open(port);
    // 405 without reading the body; the server throws it away, up to the bound.
    const declared = MAX_DISCARD_BYTES + 32 * 1024 * 1024;
    c.socket.write(`POST /v1/cluster HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared}\r\n\r\n`);
    await until(() => c.received().includes('METHOD_NOT_ALLOWED'));
    const chunk = Buffer.alloc(1024 * 1024, 1);
    let sent = 0;
    const pump = (): void => {
      while (sent < declared && !c.socket.destroyed && c.socket.write(chunk)) sent += chunk.length;
    };
    c.socket.on('drain', pump);
    pump();
    await withDeadline(c.closed);
    expect(sent).toBeGreaterThan(MAX_DISCARD_BYTES - 8 * 1024 * 1024);
    expect(sent).toBeLessThan(declared);
  });
});

async function until(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + DEADLINE_MS;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met within the deadline');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function withDeadline<T>(promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not within ${DEADLINE_MS} ms`)), DEADLINE_MS).unref()),
  ]);
}
