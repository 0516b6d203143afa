import { MemoryLevel } from 'memory-level';
import { openStore, type LevelLike } from '@hearsay/storage';
import { createApp, createLocalService } from '../src/index.ts';
import { Hono } from 'hono';

const store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'bench' });
await store.batch(Array.from({ length: 10_000 }, (_, i) => ({ type: 'put' as const, key: `key${i}`, value: new Uint8Array(100).fill(120) })));
const app = createApp({ service: createLocalService(store) });
const bare = new Hono();
const v = new Uint8Array(100);
bare.get('/v1/kv/*', (c) => c.body(v));
bare.put('/v1/kv/*', async (c) => { await c.req.arrayBuffer(); return c.body(null, 204); });
const body = new Uint8Array(100).fill(1);
const N = 20000;
async function time(name: string, f: (i: number) => Promise<unknown>, conc = 50) {
  const t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => { while (next < N) await f(next++ % 10000); }));
  const us = ((performance.now() - t) * 1000) / N;
  console.log(name.padEnd(20), us.toFixed(2), 'us/op');
}
for (let round = 0; round < 2; round++) {
  await time('store.get', (i) => store.get(`key${i}`));
  await time('store.put', (i) => store.put(`key${i}`, body));
  await time('bare GET', (i) => bare.fetch(new Request(`http://x/v1/kv/key${i}`)));
  await time('app GET', (i) => app.fetch(new Request(`http://x/v1/kv/key${i}`)));
  await time('bare PUT', (i) => bare.fetch(new Request(`http://x/v1/kv/key${i}`, { method: 'PUT', body })));
  await time('app PUT', (i) => app.fetch(new Request(`http://x/v1/kv/key${i}`, { method: 'PUT', body })));
}
