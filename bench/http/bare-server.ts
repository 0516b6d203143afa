/**
 * The baseline of `bench/http`: a bare Hono route on @hono/node-server that
 * does no storage. GET answers a constant 100-byte value; PUT reads the body
 * and answers 204. Prints `{"http":"<url>"}` once it listens.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const VALUE = new Uint8Array(100).fill(0x61);

const app = new Hono();
app.get('/v1/kv/*', (c) => c.body(VALUE, 200, { 'content-type': 'application/octet-stream', etag: '"1.0.bare"' }));
app.put('/v1/kv/*', async (c) => {
  await c.req.arrayBuffer();
  return c.body(null, 204, { etag: '"1.0.bare"' });
});

const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.argv[2] ?? 0) }, (info) => {
  process.stdout.write(`${JSON.stringify({ http: `http://127.0.0.1:${info.port}` })}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
