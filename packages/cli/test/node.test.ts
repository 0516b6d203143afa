import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HearsayClient } from '@hearsay/client';
import { createLocalNodeService, startNode, type NodeOptions, type RunningNode } from '../src/index.ts';

let dataDir: string;
let logLines: Record<string, unknown>[];
const running: RunningNode[] = [];

function options(extra: Partial<NodeOptions> = {}): NodeOptions {
  const logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) });
  return { dataDir, host: '127.0.0.1', httpPort: 0, gossipPort: 7946, seeds: [], replicationFactor: 3, logger, ...extra };
}

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hearsay-node-'));
  logLines = [];
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.stop()));
  await rm(dataDir, { recursive: true, force: true });
});

describe('startNode', () => {
  it('serves the API on a free port and stops idempotently', async () => {
    const node = await startNode(options({ nodeId: 'node-under-test' }));
    running.push(node);
    expect(node.nodeId).toBe('node-under-test');
    expect(node.httpUrl).toBe(`http://127.0.0.1:${node.httpPort}`);
    const client = new HearsayClient({ baseUrl: node.httpUrl });
    await client.put('k', 'v');
    expect((await client.get('k'))?.text()).toBe('v');
    expect((await client.cluster()).members[0]?.http).toBe(node.httpUrl);
    expect(logLines[0]).toMatchObject({ nodeId: 'node-under-test', http: node.httpUrl, mode: 'single-node' });
    await Promise.all([node.stop(), node.stop()]);
    expect(logLines.at(-1)?.['msg']).toContain('node stopped');
    await expect(client.get('k')).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
  });

  it('reports /v1/health as draining (503 NOT_SERVING) from the moment stop begins', async () => {
    const node = await startNode(options());
    expect((await node.app.request('/v1/health')).status).toBe(200);
    const stopping = node.stop('test');
    const health = await node.app.request('/v1/health');
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ error: { code: 'NOT_SERVING' } });
    await stopping;
    expect(logLines.find((line) => String(line['msg']).startsWith('shutting down'))).toMatchObject({ reason: 'test', inFlight: 0 });
  });

  it('is not healthy while the data dir has less free space than minFreeDiskBytes, and says why', async () => {
    // More free space than any disk has: the check fails at once.
    const node = await startNode(options({ limits: { minFreeDiskBytes: Number.MAX_SAFE_INTEGER } }));
    running.push(node);
    let health = await node.app.request('/v1/health');
    for (let i = 0; i < 200 && health.status === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      health = await node.app.request('/v1/health');
    }
    expect(health.status).toBe(503);
    expect(((await health.json()) as { error: { message: string } }).error.message).toContain('the disk of the data dir is full');
    expect(logLines.find((line) => String(line['msg']).startsWith('the disk of the data dir is full'))).toBeDefined();
  });

  it('refuses limits that do not fit together', async () => {
    await expect(startNode(options({ limits: { headersTimeoutMs: 40_000, receiveTimeoutMs: 30_000 } }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(startNode(options({ limits: { maxBodyBytesInFlight: 1000 } }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('refuses a --node-id that differs from the data dir', async () => {
    const first = await startNode(options({ nodeId: 'first' }));
    await first.stop();
    await expect(startNode(options({ nodeId: 'second' }))).rejects.toMatchObject({ code: 'NODE_ID_MISMATCH' });
    const again = await startNode(options());
    running.push(again);
    expect(again.nodeId).toBe('first');
  });

  it('opens the store with the maximum clock offset, and refuses a clock high-water mark far ahead unless accepted', async () => {
    const node = await startNode(options({ maxClockOffsetMs: 1234 }));
    expect(node.store.clockStatus().maxOffsetMs).toBe(1234);
    await node.stop();
    // A run whose clock was an hour ahead left its high-water mark there.
    const { openStore } = await import('@hearsay/storage');
    const skewed = await openStore({ location: join(dataDir, 'store'), clock: { now: () => Date.now() + 3_600_000 } });
    await skewed.close();
    const refused = await startNode(options()).then(() => undefined, (e: unknown) => e);
    expect(refused).toMatchObject({ name: 'CliError', code: 'CLOCK_AHEAD' });
    expect((refused as Error).message).toMatch(/^refusing to start: the clock high-water mark persisted in this store is (59|60)\.\d min ahead of the wall clock/);
    expect((refused as Error).message).toContain('or start with --accept-clock-ahead');
    const accepted = await startNode(options({ acceptClockAhead: true }));
    running.push(accepted);
    expect(logLines.find((l) => String(l['msg']).startsWith('started on a clock high-water mark'))).toMatchObject({ level: 40 });
    // It serves reads, but stamps nothing until its clock passes the mark.
    const put = await accepted.app.request('/v1/kv/k', { method: 'PUT', body: 'v' });
    expect(put.status).toBe(503);
    expect(((await put.json()) as { error: { code: string } }).error.code).toBe('CLOCK_SKEW');
    expect((await accepted.app.request('/v1/kv/k')).status).toBe(404);
  });

  it('plugs in a service factory: its routes, its mode, and its stop before the store closes', async () => {
    const events: string[] = [];
    const internal = new Hono().get('/ping', (c) => c.text('pong'));
    const node = await startNode(
      options({
        createService: async (context) => {
          const local = await createLocalNodeService(context);
          return {
            ...local,
            internal,
            mode: 'test-cluster',
            stop: async () => {
              // The store is still open while the service stops.
              await context.store.get('k');
              events.push('service stopped');
            },
          };
        },
      }),
    );
    expect(await (await fetch(`${node.httpUrl}/internal/ping`)).text()).toBe('pong');
    expect(logLines[0]).toMatchObject({ mode: 'test-cluster' });
    await node.stop();
    expect(events).toEqual(['service stopped']);
  });

  it('releases the port and the data dir when the service factory fails', async () => {
    await expect(
      startNode(
        options({
          createService: async () => {
            throw new Error('no cluster today');
          },
        }),
      ),
    ).rejects.toThrow('no cluster today');
    const node = await startNode(options());
    running.push(node);
    expect((await new HearsayClient({ baseUrl: node.httpUrl }).health()).ok).toBe(true);
  });
});

describe('hearsay start wiring (the cluster node service)', () => {
  it('a one-node cluster answers a GET of a key in memory synchronously, and answers it right', async () => {
    const { createClusterNodeService } = await import('../src/cluster.ts');
    const node = await startNode(options({ gossipPort: 0, createService: createClusterNodeService() }));
    running.push(node);
    const client = new HearsayClient({ baseUrl: node.httpUrl });
    const { etag } = await client.put('k', 'v');
    expect(node.service.getNow).toBeTypeOf('function');
    const answer = node.app.fetch(new Request(`${node.httpUrl}/v1/kv/k`));
    expect(answer).toBeInstanceOf(Response);
    const response = answer as Response;
    expect(await response.text()).toBe('v');
    expect(response.headers.get('etag')).toBe(etag);
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const viaHttp = await client.get('k');
    expect(viaHttp?.notModified === false && viaHttp.text()).toBe('v');
    expect(viaHttp?.notModified === false && viaHttp.etag).toBe(etag);
  });
});
