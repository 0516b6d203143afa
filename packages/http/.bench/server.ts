import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { MemoryLevel } from 'memory-level';
import { ClassicLevel } from 'classic-level';
import { openStore, type LevelLike } from '@hearsay/storage';
import { createApp, createLocalService } from '../src/index.ts';

const mode = process.argv[2] ?? 'app';
const port = Number(process.argv[3] ?? 7100);
let fetch: (r: Request, env?: unknown) => Response | Promise<Response>;
if (mode === 'bare') {
  const app = new Hono();
  const value = new Uint8Array(100).fill(120);
  app.get('/v1/kv/*', (c) => c.body(value));
  app.put('/v1/kv/*', async (c) => {
    await c.req.arrayBuffer();
    return c.body(null, 204);
  });
  fetch = app.fetch;
} else {
  const db = mode === 'disk' ? new ClassicLevel(`/tmp/hbench-${process.pid}`) : new MemoryLevel();
  const store = await openStore({ db: db as unknown as LevelLike, nodeId: 'bench' });
  const ops = Array.from({ length: 10_000 }, (_, i) => ({ type: 'put' as const, key: `key${i}`, value: new Uint8Array(100).fill(120) }));
  await store.batch(ops);
  fetch = createApp({ service: createLocalService(store) }).fetch;
}
serve({ fetch, port, hostname: '127.0.0.1' }, () => console.log('ready', mode, port));
process.on('SIGINT', () => process.exit(0));
process.on('SIGUSR2', () => { const u = process.cpuUsage(); console.log('cpu', u.user + u.system); });
