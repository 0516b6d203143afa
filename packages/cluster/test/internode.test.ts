import { describe, expect, it } from 'vitest';
import { MemoryLevel } from 'memory-level';
import { openStore, type StoredRecord } from '@hearsay/storage';
import { checkRequest, signRequest, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../src/auth.ts';
import { ClusterError } from '../src/errors.ts';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { createHttpTransport } from '../src/http-transport.ts';
import { createInternodeApp, internodePackr } from '../src/internode-app.ts';
import { createInternodeHandler } from '../src/internode-handler.ts';
import { InternodePeerClient, type InternodeTransport } from '../src/peer-client.ts';
import { VirtualTimers } from './virtual-timers.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const rec = (key: string, ms: number): StoredRecord => ({ key, value: enc(key), version: { ms, counter: 0, node: 'n9' }, tombstone: false });

async function node(clusterKey?: string) {
  const timers = new VirtualTimers();
  const db = new MemoryLevel<string, Uint8Array>();
  const store = await openStore({ db: db.sublevel('data') as never, nodeId: 'n1', bucketBits: 8, now: () => timers.nowMs() });
  const hints = new HintStore(hintsSublevel(db));
  await hints.open();
  const app = createInternodeApp({
    handle: createInternodeHandler({ store, hints, timers, tombstoneGraceMs: 1000 }),
    timers,
    ...(clusterKey === undefined ? {} : { clusterKey }),
  });
  // Mounted under /internal as the HTTP app does.
  const { Hono } = await import('hono');
  const root = new Hono().route('/internal', app);
  const fetchVia = (url: string, init: RequestInit) => Promise.resolve(root.request(url, init));
  return { timers, store, hints, root, fetchVia };
}

function client(n: Awaited<ReturnType<typeof node>>, clusterKey?: string, options = {}) {
  const transport = createHttpTransport({
    baseUrl: 'http://n1',
    timers: n.timers,
    fetch: n.fetchVia,
    ...(clusterKey === undefined ? {} : { clusterKey }),
  });
  return new InternodePeerClient(transport, { timers: n.timers, ...options });
}

describe('internode API over HTTP', () => {
  it('writes, reads, hints and scans through the Hono routes', async () => {
    const n = await node('secret');
    const c = client(n, 'secret');
    await c.write([rec('a', 5), rec('b', 5)]);
    const [a, missing] = await c.read(['a', 'zzz']);
    expect(a?.version).toEqual({ ms: 5, counter: 0, node: 'n9' });
    expect(missing).toBeUndefined();
    await c.hint('n7', [rec('h', 1)]);
    expect(n.hints.count('n7')).toBe(1);
    const page = await c.scan({ prefix: '', limit: 1 });
    expect(page.records.map((r) => r.key)).toEqual(['a']);
    expect(page.more).toBe(true);
    const rest = await c.scan({ prefix: '', limit: 10, after: 'a' });
    expect(rest.records.map((r) => r.key)).toEqual(['b']);
    expect(rest.more).toBe(false);
  });

  it.each([
    { server: 'secret', client: undefined, code: 'PEER_UNAUTHORIZED', status: 401 },
    { server: 'secret', client: 'other', code: 'PEER_UNAUTHORIZED', status: 403 },
    { server: undefined, client: 'secret', code: 'PEER_UNAUTHORIZED', status: 403 },
  ])('refuses a node with key $client when the cluster key is $server', async ({ server, client: key, code, status }) => {
    const n = await node(server);
    const e = await client(n, key).write([rec('a', 1)]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClusterError);
    expect((e as ClusterError).code).toBe(code);
    expect((e as ClusterError).message).toContain(`(${status})`);
    expect(await n.store.getRecord('a')).toBeUndefined();
  });

  it('works over real loopback sockets with the default node:http keep-alive transport', async () => {
    const n = await node('secret');
    const { createServer } = await import('node:http');
    let connections = 0;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const init = { method: req.method ?? 'GET', headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) };
        void Promise.resolve(n.root.request(`http://n1${req.url ?? '/'}`, init)).then(async (r) => {
          res.writeHead(r.status, Object.fromEntries(r.headers));
          res.end(Buffer.from(await r.arrayBuffer()));
        });
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const transport = createHttpTransport({ baseUrl: `http://127.0.0.1:${port}`, timers: n.timers, clusterKey: 'secret' });
      const c = new InternodePeerClient(transport, { timers: n.timers });
      await c.write([rec('a', 5)]);
      for (let i = 0; i < 5; i++) {
        const [a, missing] = await c.read(['a', 'zzz']);
        expect(a?.version).toEqual({ ms: 5, counter: 0, node: 'n9' });
        expect(missing).toBeUndefined();
      }
      expect(connections).toBe(1); // one kept-alive socket for sequential requests
      const bad = createHttpTransport({ baseUrl: `http://127.0.0.1:${port}`, timers: n.timers, clusterKey: 'other' });
      const e = await new InternodePeerClient(bad, { timers: n.timers }).read(['a']).catch((x: unknown) => x);
      expect((e as ClusterError).code).toBe('PEER_UNAUTHORIZED');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    const refused = createHttpTransport({ baseUrl: 'http://127.0.0.1:1', timers: n.timers });
    const e = await new InternodePeerClient(refused, { timers: n.timers }).read(['a']).catch((x: unknown) => x);
    expect((e as ClusterError).code).toBe('PEER_UNREACHABLE');
  });

  it('times out a peer that accepts the connection but never answers (node:http transport)', async () => {
    const timers = new VirtualTimers();
    const { createServer } = await import('node:http');
    const server = createServer(() => undefined); // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const c = new InternodePeerClient(createHttpTransport({ baseUrl: `http://127.0.0.1:${port}`, timers }), { timers, timeoutMs: 100 });
      const e = await timers.runUntil(c.read(['a']).catch((x: unknown) => x));
      expect((e as ClusterError).code).toBe('PEER_TIMEOUT');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses stale timestamps and bad bodies', async () => {
    const n = await node('secret');
    const body = internodePackr.pack({ records: [rec('a', 1)] });
    const ts = n.timers.nowMs() - 60_000;
    const stale = await n.root.request('http://n1/internal/write', {
      method: 'POST',
      body,
      headers: { [TIMESTAMP_HEADER]: String(ts), [SIGNATURE_HEADER]: signRequest('secret', 'POST', '/internal/write', ts, body) },
    });
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('STALE_REQUEST');

    const now = n.timers.nowMs();
    const garbage = new Uint8Array([0xc1, 0xff, 0x00]);
    const bad = await n.root.request('http://n1/internal/write', {
      method: 'POST',
      body: garbage,
      headers: { [TIMESTAMP_HEADER]: String(now), [SIGNATURE_HEADER]: signRequest('secret', 'POST', '/internal/write', now, garbage) },
    });
    expect(bad.status).toBe(400);
    const badRecord = internodePackr.pack({ records: [{ key: '', value: 1 }] });
    const bad2 = await n.root.request('http://n1/internal/write', {
      method: 'POST',
      body: badRecord,
      headers: { [TIMESTAMP_HEADER]: String(now), [SIGNATURE_HEADER]: signRequest('secret', 'POST', '/internal/write', now, badRecord) },
    });
    expect(bad2.status).toBe(400);
    const huge = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 5; i++) ctl.enqueue(new Uint8Array(1024));
        ctl.close();
      },
    });
    const small = createInternodeApp({ handle: async () => ({}), timers: n.timers, maxBodyBytes: 4096 });
    const tooLarge = await small.request('http://n1/write', { method: 'POST', body: huge, duplex: 'half' } as RequestInit);
    expect(tooLarge.status).toBe(413);
    const unknown = await n.root.request('http://n1/internal/nope', { method: 'POST', body });
    expect(unknown.status).toBe(404);
  });

  it('checkRequest is table-driven over its cases', () => {
    const body = enc('x');
    const sig = signRequest('k', 'POST', '/p', 1000, body);
    const h = (s?: string, t?: string) => ({ get: (n: string) => (n === SIGNATURE_HEADER ? s : n === TIMESTAMP_HEADER ? t : undefined) });
    expect(checkRequest('k', 'POST', '/p', h(sig, '1000'), body, 1000)).toBeUndefined();
    expect(checkRequest('k', 'POST', '/other', h(sig, '1000'), body, 1000)?.status).toBe(403);
    expect(checkRequest('k', 'POST', '/p', h(sig, '1000'), enc('y'), 1000)?.status).toBe(403);
    expect(checkRequest('k', 'POST', '/p', h(sig, '1000'), body, 1000 + 31_000)?.code).toBe('STALE_REQUEST');
    expect(checkRequest('k', 'POST', '/p', h(undefined, '1000'), body, 1000)?.code).toBe('UNAUTHENTICATED');
    expect(checkRequest('k', 'POST', '/p', h('zz', '1000'), body, 1000)?.code).toBe('FORBIDDEN');
    expect(checkRequest(undefined, 'POST', '/p', h(), body, 1000)).toBeUndefined();
    expect(checkRequest(undefined, 'POST', '/p', h(sig, '1000'), body, 1000)?.code).toBe('FORBIDDEN');
  });
});

describe('InternodePeerClient', () => {
  it('batches writes to one peer while a write is in flight', async () => {
    const timers = new VirtualTimers();
    const sent: number[] = [];
    let release: (() => void) | undefined;
    const transport: InternodeTransport = async (type, body) => {
      const { records } = internodePackr.unpack(body) as { records: unknown[] };
      sent.push(records.length);
      if (sent.length === 1) await new Promise<void>((r) => (release = r));
      return internodePackr.pack({ applied: records.length });
    };
    const c = new InternodePeerClient(transport, { timers, maxBatchRecords: 10, batchDelayMs: 5 });
    const first = c.write([rec('a', 1)]);
    await new Promise((r) => setImmediate(r));
    const rest = Array.from({ length: 25 }, (_, i) => c.write([rec(`k${i}`, 1)]));
    await new Promise((r) => setImmediate(r));
    release!();
    await timers.runUntil(Promise.all([first, ...rest]));
    expect(sent[0]).toBe(1);
    expect(sent.slice(1).reduce((a, b) => a + b, 0)).toBe(25);
    expect(Math.max(...sent.slice(1))).toBeLessThanOrEqual(10);
    expect(sent.length).toBeLessThanOrEqual(5);
  });

  it('times out, bounds the queue, and rejects with stable codes', async () => {
    const timers = new VirtualTimers();
    const hang: InternodeTransport = () => new Promise(() => undefined);
    const c = new InternodePeerClient(hang, { timers, timeoutMs: 100, maxInFlight: 1, maxQueued: 1 });
    const a = c.scan({ prefix: '', limit: 1 });
    const b = c.scan({ prefix: '', limit: 1 });
    const over = await c.scan({ prefix: '', limit: 1 }).catch((e: unknown) => e);
    expect((over as ClusterError).code).toBe('PEER_OVERLOADED');
    const ea = await timers.runUntil(a.catch((e: unknown) => e));
    expect((ea as ClusterError).code).toBe('PEER_TIMEOUT');
    const eb = await timers.runUntil(b.catch((e: unknown) => e));
    expect((eb as ClusterError).code).toBe('PEER_TIMEOUT');
  });

  it('batches reads while maxReadsInFlight are in flight, with no timer, and splits the answer per caller', async () => {
    const timers = new VirtualTimers();
    const sent: string[][] = [];
    const releases: (() => void)[] = [];
    const transport: InternodeTransport = async (type, body) => {
      expect(type).toBe('read');
      const { keys } = internodePackr.unpack(body) as { keys: string[] };
      sent.push(keys);
      if (sent.length <= 2) await new Promise<void>((r) => releases.push(r));
      return internodePackr.pack({ records: keys.map((k) => (k.startsWith('miss') ? null : rec(k, 1))) });
    };
    const c = new InternodePeerClient(transport, { timers, maxReadsInFlight: 2, maxBatchRecords: 10, batchDelayMs: 1000 });
    const first = c.read(['a']);
    await new Promise((r) => setImmediate(r));
    const second = c.read(['b']);
    await new Promise((r) => setImmediate(r));
    // Two reads in flight: the next ones wait for either to answer, then go together (at most 10 keys a request).
    const rest = Array.from({ length: 15 }, (_, i) => c.read(i % 5 === 0 ? [`miss${i}`, `k${i}`] : [`k${i}`]));
    await new Promise((r) => setImmediate(r));
    expect(sent.length).toBe(2);
    for (const r of releases) r();
    const started = timers.nowMs();
    const answers = await Promise.all([first, second, ...rest]); // no runUntil: no timer is involved
    expect(timers.nowMs()).toBe(started);
    expect(answers.map((a) => a.map((r) => r?.key ?? null))).toEqual([
      ['a'],
      ['b'],
      ...Array.from({ length: 15 }, (_, i) => (i % 5 === 0 ? [null, `k${i}`] : [`k${i}`])),
    ]);
    expect(sent.length).toBe(4); // 18 keys after the first two: 10 + 8
    expect(Math.max(...sent.map((k) => k.length))).toBeLessThanOrEqual(10);
    expect(c.requestsSent).toBe(4);
  });

  it('a read is not held back by writes waiting on the write batch timer', async () => {
    const timers = new VirtualTimers();
    let releaseWrite: (() => void) | undefined;
    const transport: InternodeTransport = async (type, body) => {
      const msg = internodePackr.unpack(body) as { keys?: string[]; records?: unknown[] };
      if (type === 'write') {
        if (releaseWrite === undefined) await new Promise<void>((r) => (releaseWrite = r));
        return internodePackr.pack({ applied: msg.records!.length });
      }
      return internodePackr.pack({ records: msg.keys!.map((k) => rec(k, 1)) });
    };
    const c = new InternodePeerClient(transport, { timers, batchDelayMs: 60_000 });
    const w1 = c.write([rec('w1', 1)]);
    await new Promise((r) => setImmediate(r));
    const w2 = c.write([rec('w2', 1)]); // waits for the batch timer (a write is in flight)
    const started = timers.nowMs();
    const [r] = await c.read(['x']);
    expect(r?.key).toBe('x');
    expect(timers.nowMs()).toBe(started);
    releaseWrite!();
    await timers.runUntil(Promise.all([w1, w2]));
  });

  it('rejects a read batch as a whole when the peer answers with the wrong number of records', async () => {
    const timers = new VirtualTimers();
    const transport: InternodeTransport = async () => internodePackr.pack({ records: [null] });
    const c = new InternodePeerClient(transport, { timers });
    const both = [c.read(['a']), c.read(['b'])].map((p) => p.catch((e: unknown) => e));
    const [ea, eb] = await Promise.all(both);
    expect((ea as ClusterError).code).toBe('PEER_BAD_RESPONSE');
    expect((eb as ClusterError).code).toBe('PEER_BAD_RESPONSE');
  });
});
