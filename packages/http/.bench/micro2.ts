import { MemoryLevel } from 'memory-level';
import { openStore, type LevelLike } from '@hearsay/storage';
import { createApp, createLocalService } from '../src/index.ts';
import { Hono } from 'hono';
import { Counter, Histogram, Registry } from 'prom-client';

const store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'bench' });
await store.batch(Array.from({ length: 10_000 }, (_, i) => ({ type: 'put' as const, key: `key${i}`, value: new Uint8Array(100).fill(120) })));
const app = createApp({ service: createLocalService(store) });
const bare = new Hono();
const v = new Uint8Array(100);
bare.get('/v1/kv/*', (c) => c.body(v));
const reqs = Array.from({ length: 100 }, (_, i) => new Request(`http://x/v1/kv/key${i}`));
const N = 200000;
async function time(name: string, f: (i: number) => unknown) {
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    for (let i = 0; i < N; i++) await f(i);
    best = Math.min(best, ((performance.now() - t) * 1000) / N);
  }
  console.log(name.padEnd(24), best.toFixed(3), 'us/op');
}
const reg = new Registry();
const h = new Histogram({ name: 'h', help: 'h', labelNames: ['route', 'method', 'status'], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [reg] });
const cnt = new Counter({ name: 'c', help: 'c', labelNames: ['route', 'method', 'status'], registers: [reg] });
const labels = { route: '/v1/kv/{key}', method: 'GET', status: '200' };
await time('prom observe+inc', () => { h.observe(labels, 0.0003); cnt.inc(labels); });
await time('store.get', (i) => store.get(`key${i % 100}`));
await time('bare GET', (i) => bare.fetch(reqs[i % 100]!));
await time('app GET', (i) => app.fetch(reqs[i % 100]!));
