import { describe, expect, it } from 'vitest';
import { MemoryLevel } from 'memory-level';
import { openStore, type StoredRecord } from '@hearsay/storage';
import type { BodyBudget } from '@hearsay/service';
import { authHeaders, signRequest, SIGNATURE_HEADER } from '../src/auth.ts';
import { ClusterError } from '../src/errors.ts';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { createHttpTransport } from '../src/http-transport.ts';
import { createInternodeApp, internodePackr } from '../src/internode-app.ts';
import { createInternodeHandler } from '../src/internode-handler.ts';
import { InternodePeerClient, type InternodeTransport } from '../src/peer-client.ts';
import { VirtualClock } from './virtual-clock.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const rec = (key: string, ms: number): StoredRecord => ({ key, value: enc(key), version: { ms, counter: 0, node: 'n9' }, tombstone: false });

/** A node's body budget, as `LoadLimits` of `@hearsay/http` keeps it (the same interface). */
function bodyBudget(maxBodyBytesInFlight: number): BodyBudget & { readonly bodyBytesInFlight: number } {
  let held = 0;
  return {
    maxBodyBytesInFlight,
    get bodyBytesInFlight() {
      return held;
    },
    reserveBody(bytes) {
      if (held + bytes > maxBodyBytesInFlight) return false;
      held += bytes;
      return true;
    },
    releaseBody(bytes) {
      held -= bytes;
    },
  };
}

async function node(clusterKey?: string, extra: { load?: BodyBudget; maxBodyBytes?: number; selfId?: string } = {}) {
  const clock = new VirtualClock();
  const db = new MemoryLevel<string, Uint8Array>();
  const store = await openStore({ db: db.sublevel('data') as never, nodeId: 'n1', bucketBits: 8, clock });
  const hints = new HintStore(hintsSublevel(db));
  await hints.open();
  const app = createInternodeApp({
    handle: createInternodeHandler({ store, hints, clock, tombstoneGraceMs: 1000 }),
    clock,
    selfId: extra.selfId ?? 'n1',
    ...(clusterKey === undefined ? {} : { clusterKey }),
    ...(extra.load === undefined ? {} : { load: extra.load }),
    ...(extra.maxBodyBytes === undefined ? {} : { maxBodyBytes: extra.maxBodyBytes }),
  });
  // Mounted under /internal as the HTTP app does.
  const { Hono } = await import('hono');
  const root = new Hono().route('/internal', app);
  const fetchVia = (url: string, init: RequestInit) => Promise.resolve(root.request(url, init));
  return { clock, store, hints, root, fetchVia };
}

function client(n: Awaited<ReturnType<typeof node>>, clusterKey?: string, options = {}) {
  const transport = createHttpTransport({
    baseUrl: 'http://n1',
    targetId: 'n1',
    clock: n.clock,
    fetch: n.fetchVia,
    ...(clusterKey === undefined ? {} : { clusterKey }),
  });
  return new InternodePeerClient(transport, { clock: n.clock, ...options });
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
      const transport = createHttpTransport({ baseUrl: `http://127.0.0.1:${port}`, targetId: 'n1', clock: n.clock, clusterKey: 'secret' });
      const c = new InternodePeerClient(transport, { clock: n.clock });
      await c.write([rec('a', 5)]);
      for (let i = 0; i < 5; i++) {
        const [a, missing] = await c.read(['a', 'zzz']);
        expect(a?.version).toEqual({ ms: 5, counter: 0, node: 'n9' });
        expect(missing).toBeUndefined();
      }
      expect(connections).toBe(1); // one kept-alive socket for sequential requests
      const bad = createHttpTransport({ baseUrl: `http://127.0.0.1:${port}`, targetId: 'n1', clock: n.clock, clusterKey: 'other' });
      const e = await new InternodePeerClient(bad, { clock: n.clock }).read(['a']).catch((x: unknown) => x);
      expect((e as ClusterError).code).toBe('PEER_UNAUTHORIZED');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    const refused = createHttpTransport({ baseUrl: 'http://127.0.0.1:1', clock: n.clock });
    const e = await new InternodePeerClient(refused, { clock: n.clock }).read(['a']).catch((x: unknown) => x);
    expect((e as ClusterError).code).toBe('PEER_UNREACHABLE');
  });

  it('times out a peer that accepts the connection but never answers (node:http transport)', async () => {
    const clock = new VirtualClock();
    const { createServer } = await import('node:http');
    const server = createServer(() => undefined); // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const c = new InternodePeerClient(createHttpTransport({ baseUrl: `http://127.0.0.1:${port}`, clock }), { clock, timeoutMs: 100 });
      const e = await clock.runUntil(c.read(['a']).catch((x: unknown) => x));
      expect((e as ClusterError).code).toBe('PEER_TIMEOUT');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  /** A signed request as our transport makes it: headers (with Content-Length) and body. */
  const signed = (body: Uint8Array, nowMs: number, target = 'n1', key = 'secret', path = '/internal/write'): RequestInit => ({
    method: 'POST',
    body,
    headers: { 'content-length': String(body.byteLength), ...authHeaders(key, 'POST', path, target, nowMs, body) },
  });
  const codeOf = async (r: Response): Promise<string> => ((await r.json()) as { error: { code: string } }).error.code;

  it('refuses timestamps too far from its clock as clock skew (with the offset), bad bodies, a missing Content-Length and unknown routes', async () => {
    const n = await node('secret');
    const body = internodePackr.pack({ records: [rec('a', 1)] });
    const stale = await n.root.request('http://n1/internal/write', signed(body, n.clock.now() - 60_000));
    expect(stale.status).toBe(401);
    const refusal = ((await stale.json()) as { error: { code: string; message: string; offsetMs: number } }).error;
    expect(refusal).toMatchObject({ code: 'CLOCK_SKEW', offsetMs: 60_000 });
    expect(refusal.message).toMatch(/^clock skew, not a key problem: the request was stamped 60000 ms behind this node's clock/);

    const now = n.clock.now();
    const bad = await n.root.request('http://n1/internal/write', signed(new Uint8Array([0xc1, 0xff, 0x00]), now));
    expect(bad.status).toBe(400);
    const bad2 = await n.root.request('http://n1/internal/write', signed(internodePackr.pack({ records: [{ key: '', value: 1 }] }), now));
    expect(bad2.status).toBe(400);
    const noLength = await n.root.request('http://n1/internal/write', { method: 'POST', body });
    expect(noLength.status).toBe(411);
    expect(await codeOf(noLength)).toBe('LENGTH_REQUIRED');
    const unknown = await n.root.request('http://n1/internal/nope', signed(body, now, 'n1', 'secret', '/internal/nope'));
    expect(unknown.status).toBe(404);
    expect(await n.store.getRecord('a')).toBeUndefined();
  });

  it('a sender whose clock is a minute behind learns it is clock skew, with the offset, not a key problem', async () => {
    const n = await node('secret');
    const behind = new VirtualClock(n.clock.now() - 60_000);
    const transport = createHttpTransport({ baseUrl: 'http://n1', targetId: 'n1', clock: behind, fetch: n.fetchVia, clusterKey: 'secret' });
    const e = await new InternodePeerClient(transport, { clock: behind }).read(['a']).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'ClusterError', code: 'PEER_CLOCK_SKEW' });
    expect((e as Error).message).toBe(
      'http://n1 refused our request for clock skew, not for our key: its clock is 60000 ms ahead of ours, more than internode requests allow; check the clocks (NTP) of both nodes',
    );
  });

  it('a write answers, per record, applied, held (the higher version the replica keeps) or refused (too far ahead of its clock); a batch with one bad record still applies the rest', async () => {
    const n = await node('secret');
    const now = n.clock.now();
    await n.store.apply(rec('newer', now));
    const c = client(n, 'secret');
    const outcomes = await c.write([rec('fresh', now), rec('newer', now - 10), rec('newer', now), rec('future', now + 3_600_000)]);
    expect(outcomes).toEqual([
      null,
      { held: { ms: now, counter: 0, node: 'n9' }, tombstone: false },
      null,
      { aheadMs: 3_600_000 },
    ]);
    expect((await n.store.getRecord('fresh'))?.version.ms).toBe(now);
    expect(await n.store.getRecord('future')).toBeUndefined();
    expect(n.store.clockStatus().versionsRefused).toBe(1);
  });

  it('a stand-in refuses hints too far ahead of its clock (clock skew) and keeps the others', async () => {
    const n = await node('secret');
    const now = n.clock.now();
    const e = await client(n, 'secret').hint('n7', [rec('h', now), rec('far', now + 3_600_000)]).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'PEER_CLOCK_SKEW' });
    expect((e as Error).message).toMatch(/refused hints whose versions are up to 3600000 ms ahead of its clock/);
    expect(n.hints.count('n7')).toBe(1);
  });

  /** A body that records whether anyone read it. */
  function watchedBody(bytes: Uint8Array): { stream: ReadableStream<Uint8Array>; pulled: () => boolean } {
    let pulled = false;
    // highWaterMark 0: nothing is pulled until someone reads.
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(ctl) {
          pulled = true;
          ctl.enqueue(bytes);
          ctl.close();
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, pulled: () => pulled };
  }

  it.each([
    { name: 'no credentials', headers: (h: Record<string, string>) => ({ 'content-length': h['content-length']! }), status: 401, code: 'UNAUTHENTICATED' },
    { name: 'another key', headers: (_: Record<string, string>, b: Uint8Array, now: number) => ({ 'content-length': String(b.byteLength), ...authHeaders('other', 'POST', '/internal/write', 'n1', now, b) }), status: 403, code: 'FORBIDDEN' },
    { name: 'signed for another node', headers: (_: Record<string, string>, b: Uint8Array, now: number) => ({ 'content-length': String(b.byteLength), ...authHeaders('secret', 'POST', '/internal/write', 'n2', now, b) }), status: 403, code: 'FORBIDDEN' },
    { name: 'another declared length', headers: (h: Record<string, string>) => ({ ...h, 'content-length': String(Number(h['content-length']) + 1) }), status: 403, code: 'FORBIDDEN' },
    { name: 'a made-up signature', headers: (h: Record<string, string>) => ({ ...h, [SIGNATURE_HEADER]: 'ab'.repeat(32) }), status: 403, code: 'FORBIDDEN' },
  ])('refuses $name from the headers alone, without reading the body, and closes the connection', async ({ headers, status, code }) => {
    const n = await node('secret');
    const body = internodePackr.pack({ records: [rec('a', 1)] });
    const good = signed(body, n.clock.now()).headers as Record<string, string>;
    const watched = watchedBody(body);
    const res = await n.root.request('http://n1/internal/write', {
      method: 'POST',
      body: watched.stream,
      duplex: 'half',
      headers: headers(good, body, n.clock.now()),
    } as RequestInit);
    expect(res.status).toBe(status);
    expect(await codeOf(res)).toBe(code);
    expect(res.headers.get('connection')).toBe('close');
    expect(watched.pulled()).toBe(false);
    expect(await n.store.getRecord('a')).toBeUndefined();
    // The control: with its own headers the same body is read and applied.
    const control = watchedBody(body);
    const ok = await n.root.request('http://n1/internal/write', { method: 'POST', body: control.stream, duplex: 'half', headers: good } as RequestInit);
    expect(ok.status).toBe(200);
    expect(control.pulled()).toBe(true);
  });

  it('refuses a body that is not the one signed (same length), after reading it', async () => {
    const n = await node('secret');
    const body = internodePackr.pack({ records: [rec('a', 1)] });
    const init = signed(body, n.clock.now());
    const forged = new Uint8Array(body);
    forged[forged.length - 1]! ^= 1;
    const res = await n.root.request('http://n1/internal/write', { ...init, body: forged });
    expect(res.status).toBe(403);
    expect(await codeOf(res)).toBe('BODY_MISMATCH');
    expect(await n.store.getRecord('a')).toBeUndefined();
  });

  it('refuses a replayed request, and one signed for another node', async () => {
    const n = await node('secret');
    const other = await node('secret', { selfId: 'n2' });
    const body = internodePackr.pack({ records: [rec('a', 1)] });
    const captured = signed(body, n.clock.now());
    expect((await n.root.request('http://n1/internal/write', captured)).status).toBe(200);
    const again = await n.root.request('http://n1/internal/write', captured);
    expect(again.status).toBe(401);
    expect(await codeOf(again)).toBe('REPLAYED');
    const elsewhere = await other.root.request('http://n2/internal/write', captured);
    expect(elsewhere.status).toBe(403);
    expect(await other.store.getRecord('a')).toBeUndefined();
  });

  it('refuses an authenticated body over the limit (413) and past the body budget (503 BUSY) without reading it', async () => {
    const load = bodyBudget(4096);
    const n = await node('secret', { load, maxBodyBytes: 2048 });
    const big = internodePackr.pack({ records: [{ ...rec('big', 1), value: new Uint8Array(3000) }] });
    const watched = watchedBody(big);
    const tooLarge = await n.root.request('http://n1/internal/write', { ...signed(big, n.clock.now()), body: watched.stream, duplex: 'half' } as RequestInit);
    expect(tooLarge.status).toBe(413);
    expect(watched.pulled()).toBe(false);

    const body = internodePackr.pack({ records: [rec('a', 1)] });
    expect(load.reserveBody(4096 - 10)).toBe(true); // the rest of the budget is held elsewhere
    const busy = await n.root.request('http://n1/internal/write', signed(body, n.clock.now()));
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(await codeOf(busy)).toBe('BUSY');
    load.releaseBody(4096 - 10);
    expect((await n.root.request('http://n1/internal/write', signed(body, n.clock.now()))).status).toBe(200);
    expect(load.bodyBytesInFlight).toBe(0);
  });

  it('a node without a key needs no credentials but refuses signed requests', async () => {
    const n = await node(undefined);
    const body = internodePackr.pack({ records: [rec('a', 1)] });
    expect((await n.root.request('http://n1/internal/write', { method: 'POST', body, headers: { 'content-length': String(body.byteLength) } })).status).toBe(200);
    const res = await n.root.request('http://n1/internal/write', signed(body, n.clock.now()));
    expect(res.status).toBe(403);
  });

  it('a keyed internode app needs to know which node it is', () => {
    const clock = new VirtualClock();
    expect(() => createInternodeApp({ handle: async () => ({}), clock, clusterKey: 'k' })).toThrow(/selfId/);
    expect(() => createHttpTransport({ baseUrl: 'http://x', clock, clusterKey: 'k' })).toThrow(/targetId/);
  });

  it('signRequest covers every signed field', () => {
    const base = { method: 'POST', path: '/p', target: 'n1', timestampMs: 1000, nonce: '0'.repeat(32), bodyLength: 1, bodySha256: 'a'.repeat(64) };
    const sig = signRequest('k', base);
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    for (const change of [{ method: 'PUT' }, { path: '/q' }, { target: 'n2' }, { timestampMs: 1001 }, { nonce: '1'.repeat(32) }, { bodyLength: 2 }, { bodySha256: 'b'.repeat(64) }]) {
      expect(signRequest('k', { ...base, ...change }), JSON.stringify(change)).not.toBe(sig);
    }
    expect(signRequest('other', base)).not.toBe(sig);
  });
});

describe('InternodePeerClient', () => {
  it('batches writes to one peer while a write is in flight', async () => {
    const clock = new VirtualClock();
    const sent: number[] = [];
    let release: (() => void) | undefined;
    const transport: InternodeTransport = async (type, body) => {
      const { records } = internodePackr.unpack(body) as { records: unknown[] };
      sent.push(records.length);
      if (sent.length === 1) await new Promise<void>((r) => (release = r));
      return internodePackr.pack({ applied: records.length });
    };
    const c = new InternodePeerClient(transport, { clock, maxBatchRecords: 10, batchDelayMs: 5 });
    const first = c.write([rec('a', 1)]);
    await new Promise((r) => setImmediate(r));
    const rest = Array.from({ length: 25 }, (_, i) => c.write([rec(`k${i}`, 1)]));
    await new Promise((r) => setImmediate(r));
    release!();
    await clock.runUntil(Promise.all([first, ...rest]));
    expect(sent[0]).toBe(1);
    expect(sent.slice(1).reduce((a, b) => a + b, 0)).toBe(25);
    expect(Math.max(...sent.slice(1))).toBeLessThanOrEqual(10);
    expect(sent.length).toBeLessThanOrEqual(5);
  });

  it('times out, bounds the queue, and rejects with stable codes', async () => {
    const clock = new VirtualClock();
    const hang: InternodeTransport = () => new Promise(() => undefined);
    const c = new InternodePeerClient(hang, { clock, timeoutMs: 100, maxInFlight: 1, maxQueued: 1 });
    const a = c.scan({ prefix: '', limit: 1 });
    const b = c.scan({ prefix: '', limit: 1 });
    const over = await c.scan({ prefix: '', limit: 1 }).catch((e: unknown) => e);
    expect((over as ClusterError).code).toBe('PEER_OVERLOADED');
    const ea = await clock.runUntil(a.catch((e: unknown) => e));
    expect((ea as ClusterError).code).toBe('PEER_TIMEOUT');
    const eb = await clock.runUntil(b.catch((e: unknown) => e));
    expect((eb as ClusterError).code).toBe('PEER_TIMEOUT');
  });

  it('batches reads while maxReadsInFlight are in flight, with no timer, and splits the answer per caller', async () => {
    const clock = new VirtualClock();
    const sent: string[][] = [];
    const releases: (() => void)[] = [];
    const transport: InternodeTransport = async (type, body) => {
      expect(type).toBe('read');
      const { keys } = internodePackr.unpack(body) as { keys: string[] };
      sent.push(keys);
      if (sent.length <= 2) await new Promise<void>((r) => releases.push(r));
      return internodePackr.pack({ records: keys.map((k) => (k.startsWith('miss') ? null : rec(k, 1))) });
    };
    const c = new InternodePeerClient(transport, { clock, maxReadsInFlight: 2, maxBatchRecords: 10, batchDelayMs: 1000 });
    const first = c.read(['a']);
    await new Promise((r) => setImmediate(r));
    const second = c.read(['b']);
    await new Promise((r) => setImmediate(r));
    // Two reads in flight: the next ones wait for either to answer, then go together (at most 10 keys a request).
    const rest = Array.from({ length: 15 }, (_, i) => c.read(i % 5 === 0 ? [`miss${i}`, `k${i}`] : [`k${i}`]));
    await new Promise((r) => setImmediate(r));
    expect(sent.length).toBe(2);
    for (const r of releases) r();
    const started = clock.now();
    const answers = await Promise.all([first, second, ...rest]); // no runUntil: no timer is involved
    expect(clock.now()).toBe(started);
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
    const clock = new VirtualClock();
    let releaseWrite: (() => void) | undefined;
    const transport: InternodeTransport = async (type, body) => {
      const msg = internodePackr.unpack(body) as { keys?: string[]; records?: unknown[] };
      if (type === 'write') {
        if (releaseWrite === undefined) await new Promise<void>((r) => (releaseWrite = r));
        return internodePackr.pack({ applied: msg.records!.length });
      }
      return internodePackr.pack({ records: msg.keys!.map((k) => rec(k, 1)) });
    };
    const c = new InternodePeerClient(transport, { clock, batchDelayMs: 60_000 });
    const w1 = c.write([rec('w1', 1)]);
    await new Promise((r) => setImmediate(r));
    const w2 = c.write([rec('w2', 1)]); // waits for the batch timer (a write is in flight)
    const started = clock.now();
    const [r] = await c.read(['x']);
    expect(r?.key).toBe('x');
    expect(clock.now()).toBe(started);
    releaseWrite!();
    await clock.runUntil(Promise.all([w1, w2]));
  });

  it.each([
    { name: 'more records than keys', records: [null, null, null] },
    { name: 'no record', records: [] },
  ])('rejects a read batch as a whole when the peer answers $name', async ({ records }) => {
    const clock = new VirtualClock();
    const transport: InternodeTransport = async () => internodePackr.pack({ records });
    const c = new InternodePeerClient(transport, { clock });
    const both = [c.read(['a']), c.read(['b'])].map((p) => p.catch((e: unknown) => e));
    const [ea, eb] = await Promise.all(both);
    expect((ea as ClusterError).code).toBe('PEER_BAD_RESPONSE');
    expect((eb as ClusterError).code).toBe('PEER_BAD_RESPONSE');
  });
});
