/**
 * One real `hearsay start` process (a cluster of one) with a low connection
 * cap, under the connection-level attacks and mishaps of issue 17: slow
 * connections well beyond the cap while clients keep being served; an
 * over-limit PUT from `fetch` (undici), which must see its 413 rather than
 * EPIPE; and a node shedding load, which `/v1/health` and `hearsay status`
 * must say. Waits poll a condition with a deadline; raw sockets are counted
 * in tens, so the test stays within CI's file-descriptor limits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts, metric, runCli, TestNode, until } from './cluster-processes.ts';

const MAX_CONNECTIONS = 48;
const BODY_BUDGET = 2 * 1024 * 1024;
let node: TestNode;
let tmp: string;
const sockets = new Set<Socket>();

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hearsay-hostile-'));
  const [httpPort, gossipPort] = await freePorts(2, true);
  node = new TestNode('solo', httpPort!, gossipPort!, join(tmp, 'solo'), 'hostile-connections-secret', []);
  node.start([
    '--http-max-connections', String(MAX_CONNECTIONS),
    '--http-max-body-bytes-in-flight', String(BODY_BUDGET),
    // Long enough that the slow connections below are still there when the clients come.
    '--http-headers-timeout-ms', '60000',
    '--http-receive-timeout-ms', '60000',
  ]);
  await until(async () => ((await fetch(`${node.url}/v1/health`).catch(() => undefined))?.status === 200 ? true : undefined), () => node.describe());
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await node?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** A raw connection to the node; resolves once connected (or closed, if the node closed it at once). */
function open(): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: node.httpPort });
  sockets.add(socket);
  socket.on('error', () => {});
  socket.once('close', () => sockets.delete(socket));
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(socket));
    socket.once('close', () => resolve(socket));
  });
}

function alive(): boolean {
  return node.proc!.child.exitCode === null && node.proc!.child.signalCode === null;
}

describe('a node with its connection cap under slow connections', () => {
  it('keeps serving clients while more slow connections than the cap keep arriving', async () => {
    // A first wave, three times the cap, each sending its request head a few bytes at a time and never finishing it.
    const slow: Socket[] = [];
    const trickle = setInterval(() => {
      for (const s of slow) if (!s.destroyed) s.write('X-Slow: 1\r\n');
    }, 200);
    try {
      for (let i = 0; i < 3 * MAX_CONNECTIONS; i++) {
        const s = await open();
        if (!s.destroyed) s.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n');
        slow.push(s);
      }
      // More keep arriving while clients make their requests.
      const churn = setInterval(() => {
        void open().then((s) => {
          if (!s.destroyed) s.write('GET /v1/cluster HTTP/1.1\r\n');
          slow.push(s);
        });
      }, 25);
      try {
        for (let i = 0; i < 30; i++) {
          const put = await fetch(`${node.url}/v1/kv/served/${i}`, { method: 'PUT', body: `v${i}` });
          expect(put.status, `PUT ${i}`).toBe(204);
          const get = await fetch(`${node.url}/v1/kv/served/${i}`);
          expect(await get.text()).toBe(`v${i}`);
        }
      } finally {
        clearInterval(churn);
      }
    } finally {
      clearInterval(trickle);
    }
    expect(alive()).toBe(true);
    expect(await metric(node, 'hearsay_http_connections_evicted_total{reason="no_request_yet"}')).toBeGreaterThanOrEqual(2 * MAX_CONNECTIONS);
    expect(await metric(node, 'hearsay_http_connections')).toBeLessThanOrEqual(MAX_CONNECTIONS);
    for (const s of slow) s.destroy();
  }, 60_000);
});

describe('an over-limit PUT from fetch (undici)', () => {
  it.each([4, 16])('gets its 413 at %i MiB, every time, instead of a reset while it is still sending', async (mib) => {
    const body = new Uint8Array(mib * 1024 * 1024);
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        const response = await fetch(`${node.url}/v1/kv/big`, { method: 'PUT', body });
        outcomes.push(`${response.status} ${((await response.json()) as { error: { code: string } }).error.code}`);
      } catch (error) {
        outcomes.push(`network error ${String((error as Error).cause ?? error)}`);
      }
    }
    expect(outcomes).toEqual(Array.from({ length: 10 }, () => '413 VALUE_TOO_LARGE'));
  }, 60_000);
});

describe('a node shedding load', () => {
  it('says so in /v1/health and `hearsay status`, and is ok again once it stops refusing work', async () => {
    // Two uploads declared at 1 MiB that never finish hold the whole body budget.
    const holders = await Promise.all([open(), open()]);
    for (const [i, s] of holders.entries()) s.write(`PUT /v1/kv/held/${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n`);
    await until(async () => ((await metric(node, 'hearsay_http_body_bytes_in_flight')) === BODY_BUDGET ? true : undefined), () => 'budget not held');
    const refused = await fetch(`${node.url}/v1/kv/refused`, { method: 'PUT', body: 'x' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('BUSY');

    const status = await runCli(['status', '--node', node.url]);
    expect(status.code, status.stdout + status.stderr).toBe(1);
    expect(status.stdout).toContain('not serving: shedding load');
    expect(status.stdout).toContain('body_bytes_in_flight');

    for (const s of holders) s.destroy();
    await until(async () => ((await fetch(`${node.url}/v1/health`)).status === 200 ? true : undefined), () => `not healthy again:\n${node.describe()}`);
    expect(await metric(node, 'hearsay_http_limit_refusals_total{limit="body_bytes_in_flight"}')).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
