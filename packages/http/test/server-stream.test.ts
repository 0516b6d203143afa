/**
 * `POST /v1/repair` through a real server: lines reach the client as the
 * service yields them (not buffered to the end), and a client that hangs up
 * aborts the repair's signal.
 */
import { getRequestListener } from '@hono/node-server';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import type { KvService, RepairLine } from '@hearsay/service';
import { createApp } from '../src/index.ts';

const DEADLINE_MS = 10_000;

/** Resolves when `check` holds, polling; rejects after the deadline. */
async function until(check: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > DEADLINE_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

it('streams repair progress as it happens and aborts when the client leaves', async () => {
  let release: (() => void) | undefined;
  let signal: AbortSignal | undefined;
  let yielded = 0;
  const service = {
    async *repair(options: { signal?: AbortSignal }): AsyncIterable<RepairLine> {
      signal = options.signal;
      yield { type: 'progress', done: 0, total: 2 };
      yielded += 1;
      // Hold the second line until the test has seen the first one arrive.
      await new Promise<void>((resolve) => (release = resolve));
      for (let done = 1; ; done++) {
        yield { type: 'progress', done, total: 2 };
        yielded += 1;
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  } as unknown as KvService;
  const server = createServer(getRequestListener(createApp({ service }).fetch));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/v1/repair`, { method: 'POST', signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(JSON.parse(new TextDecoder().decode(first.value))).toEqual({ type: 'progress', done: 0, total: 2 });
    expect(yielded).toBe(1); // the first line arrived while the service was still holding the second
    release?.();
    await reader.read();
    controller.abort();
    await until(() => signal?.aborted === true, 'the repair signal to abort');
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
