/**
 * The node:http internode transport against peers that misbehave at the
 * socket level, on raw `node:net` servers on 127.0.0.1 port 0: a peer that
 * answers before reading a large body and resets the connection (this
 * killed a node with an unhandled `write EPIPE`), a kept-alive connection
 * the peer closed just as it was reused, and an answer larger than allowed.
 * Every failure must come back as a ClusterError: vitest fails the run on
 * any unhandled error.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterError } from '../src/errors.ts';
import { createHttpTransport } from '../src/http-transport.ts';
import { internodePackr } from '../src/internode-app.ts';
import { backgroundClock } from '@hearsay/clock';

let server: Server | undefined;
const sockets = new Set<Socket>();

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** A raw server: `onData(socket, text so far, connection number)` decides what to write. */
async function rawServer(onData: (socket: Socket, received: string, connection: number) => void): Promise<string> {
  let connections = 0;
  server = createServer((socket) => {
    sockets.add(socket);
    const connection = ++connections;
    let received = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      onData(socket, received, connection);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as { port: number }).port}`;
}

const answer = (body: Uint8Array, extra = ''): Buffer =>
  Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/msgpack\r\nContent-Length: ${body.byteLength}\r\nKeep-Alive: timeout=5\r\n${extra}\r\n`), body]);

const call = (baseUrl: string, body: Uint8Array, options: { maxResponseBytes?: number } = {}): Promise<unknown> =>
  createHttpTransport({ baseUrl, clock: backgroundClock, ...options })('write', body, new AbortController().signal).then(
    (bytes) => internodePackr.unpack(bytes),
    (e: unknown) => e,
  );

describe('the node:http internode transport', () => {
  it('rejects, without an unhandled error, when the peer answers early and resets the connection while the body is still being sent', async () => {
    const url = await rawServer((socket, received) => {
      if (!received.includes('\r\n\r\n') || socket.writableEnded) return;
      socket.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n\r\n{}');
      setImmediate(() => socket.resetAndDestroy());
    });
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => call(url, new Uint8Array(8 * 1024 * 1024))));
    for (const outcome of outcomes) {
      expect(outcome).toBeInstanceOf(ClusterError);
      expect((outcome as ClusterError).code).toBe('PEER_UNREACHABLE');
    }
  });

  it('sends a request again, on a new connection, when the kept-alive one was closed by the peer under it', async () => {
    const served: number[] = [];
    const answered = new Map<number, number>();
    const url = await rawServer((socket, received, connection) => {
      const complete = completeRequests(received);
      while ((answered.get(connection) ?? 0) < complete) {
        const n = (answered.get(connection) ?? 0) + 1;
        answered.set(connection, n);
        served.push(connection);
        // The second request on a connection finds it closed, as when the peer's idle timer fired just then.
        if (n === 2) socket.resetAndDestroy();
        else socket.write(answer(internodePackr.pack({ applied: 1 })));
      }
    });
    const transport = createHttpTransport({ baseUrl: url, clock: backgroundClock });
    const body = internodePackr.pack({ records: [] });
    expect(internodePackr.unpack(await transport('write', body, new AbortController().signal))).toEqual({ applied: 1 });
    expect(internodePackr.unpack(await transport('write', body, new AbortController().signal))).toEqual({ applied: 1 });
    // Connection 1 served the first request and dropped the second; connection 2 served it again.
    expect(served).toEqual([1, 1, 2]);
  });

  it('refuses an answer larger than maxResponseBytes', async () => {
    const url = await rawServer((socket, received) => {
      if (received.includes('\r\n\r\n') && !socket.writableEnded) socket.end(answer(new Uint8Array(5000)));
    });
    const outcome = await call(url, new Uint8Array(10), { maxResponseBytes: 4096 });
    expect((outcome as ClusterError).code).toBe('PEER_BAD_RESPONSE');
    const chunked = await rawServer((socket, received) => {
      if (!received.includes('\r\n\r\n') || socket.writableEnded) return;
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < 10; i++) socket.write(`400\r\n${'x'.repeat(1024)}\r\n`);
    });
    const streamed = await call(chunked, new Uint8Array(10), { maxResponseBytes: 4096 });
    expect((streamed as ClusterError).code).toBe('PEER_BAD_RESPONSE');
  });

  it('maps a busy peer (503) to PEER_OVERLOADED', async () => {
    const url = await rawServer((socket, received) => {
      if (received.includes('\r\n\r\n') && !socket.writableEnded) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 18\r\n\r\n{"error":"busy"}  ');
      }
    });
    expect(((await call(url, new Uint8Array(10))) as ClusterError).code).toBe('PEER_OVERLOADED');
  });
});

/** How many whole requests (head and Content-Length body) `text` holds. */
function completeRequests(text: string): number {
  let count = 0;
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return count;
    const length = Number(/content-length: (\d+)/i.exec(text.slice(at, end))?.[1] ?? 0);
    if (text.length < end + 4 + length) return count;
    at = end + 4 + length;
    count++;
  }
}
