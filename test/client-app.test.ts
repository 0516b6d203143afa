/**
 * The client against the real Hono app (`app.request`, no sockets) over a
 * single-node service on an in-memory store: client and server agree on the
 * wire format of every route of API v1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '@hearsay/http';
import { createLocalService } from '@hearsay/service';
import { openStore, type LevelLike, type Store } from '@hearsay/storage';
import { MemoryLevel } from 'memory-level';
import { HearsayClient, HearsayError, type FetchLike } from '@hearsay/client';

let store: Store;
let client: HearsayClient;

beforeAll(async () => {
  store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'client-test', bucketBits: 4 });
  const app = createApp({ service: createLocalService(store, { httpUrl: 'http://node.test' }) });
  const fetch: FetchLike = async (input, init) => app.request(input, init);
  client = new HearsayClient({ baseUrl: 'http://node.test', fetch });
});

afterAll(async () => {
  await store.close();
});

async function caught(promise: Promise<unknown>): Promise<HearsayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HearsayError) return error;
    throw error;
  }
  throw new Error('expected a HearsayError');
}

describe('HearsayClient against createApp', () => {
  it('round-trips values, content types and etags, including awkward keys', async () => {
    const keys = ['plain', 'a/b/c', 'a/../b', './x', 'sp ace?#%&=+', 'ünï/🙂', 'trailing/'];
    for (const key of keys) {
      const { etag } = await client.put(key, `value of ${key}`, { contentType: 'text/x-test' });
      const entry = await client.get(key);
      expect(entry?.text(), key).toBe(`value of ${key}`);
      expect(entry?.etag).toBe(etag);
      expect(entry?.contentType).toBe('text/x-test');
      expect(await client.head(key)).toEqual({ key, etag, contentType: 'text/x-test', size: Buffer.byteLength(`value of ${key}`) });
    }
    const listed = [];
    for await (const item of client.listAll()) listed.push(item.key);
    expect(listed.sort()).toEqual([...keys].sort());
  });

  it('stores bytes as given', async () => {
    const bytes = new Uint8Array([0, 255, 1, 254, 10]);
    await client.put('bytes', bytes);
    const entry = await client.get('bytes');
    expect(entry?.value).toEqual(bytes);
    expect(entry?.contentType).toBe('application/octet-stream');
  });

  it('conditional writes and reads with etags', async () => {
    const first = await client.put('cond', 'v1', { ifNoneMatch: '*' });
    expect((await caught(client.put('cond', 'again', { ifNoneMatch: '*' }))).code).toBe('PRECONDITION_FAILED');
    const second = await client.put('cond', 'v2', { ifMatch: first.etag });
    const stale = await caught(client.put('cond', 'v3', { ifMatch: first.etag }));
    expect(stale).toMatchObject({ code: 'PRECONDITION_FAILED', status: 412 });
    expect(await client.get('cond', { ifNoneMatch: second.etag })).toEqual({ notModified: true, key: 'cond', etag: second.etag });
    expect(await client.get('cond', { ifNoneMatch: first.etag })).toMatchObject({ notModified: false, etag: second.etag });
    await client.delete('cond', { ifMatch: second.etag, consistency: 'all' });
    expect(await client.get('cond')).toBeUndefined();
    expect(await client.head('cond')).toBeUndefined();
    await client.delete('never-existed');
  });

  it('lists with prefix and pagination, and iterates every page', async () => {
    for (let i = 0; i < 25; i += 1) await client.put(`page/${String(i).padStart(2, '0')}`, 'x');
    const first = await client.list({ prefix: 'page/', limit: 10 });
    expect(first.items.map((item) => item.key)).toEqual(Array.from({ length: 10 }, (_, i) => `page/${String(i).padStart(2, '0')}`));
    expect(first.items[0]).toMatchObject({ size: 1, etag: expect.any(String) });
    expect(first.next).not.toBeNull();
    const all = [];
    for await (const item of client.listAll({ prefix: 'page/', limit: 7 })) all.push(item.key);
    expect(all).toHaveLength(25);
    expect(new Set(all).size).toBe(25);
  });

  it("surfaces the server's codes for bad input", async () => {
    expect(await caught(client.get('k'.repeat(1025)))).toMatchObject({ status: 400, code: expect.stringMatching(/^[A-Z_]+$/) });
    expect(await caught(client.put('big', new Uint8Array(1024 * 1024 + 1)))).toMatchObject({ status: 413, code: 'VALUE_TOO_LARGE' });
    expect(await caught(client.list({ limit: 5000 }))).toMatchObject({ status: 400 });
    expect(await caught(client.list({ cursor: 'not-a-cursor' }))).toMatchObject({ status: 400 });
  });

  it('reads cluster, health and metrics', async () => {
    const cluster = await client.cluster();
    expect(cluster.self).toBe('client-test');
    expect(cluster.members).toEqual([expect.objectContaining({ id: 'client-test', state: 'alive', http: 'http://node.test' })]);
    expect((await client.health()).ok).toBe(true);
    expect(await client.metrics()).toContain('hearsay_http_');
  });

  it('streams a repair to its summary', async () => {
    const lines = [];
    for await (const line of client.repair()) lines.push(line);
    expect(lines.at(-1)).toMatchObject({ type: 'summary', inSync: true });
  });
});
