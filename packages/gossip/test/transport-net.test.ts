// The UDP/TCP transport on 127.0.0.1 through the shared conformance suite.
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createNetTransport } from '../src/net-transport.ts';
import { parseAddress } from '../src/transport.ts';
import { transportConformance } from './transport-conformance.ts';

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

interface Held {
  socket: Socket;
  closed: Promise<void>;
}

/** A TCP connection that sends nothing, as an outsider holding a slot would. */
function holdOpen(host: string, port: number): Held {
  const socket = connect({ host, port });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, closed };
}

/** A port that was free a moment ago and has nothing listening now (TCP or UDP). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

transportConformance('udp+tcp', () => ({
  create: (options = {}) =>
    createNetTransport({
      host: '127.0.0.1',
      port: options.address === undefined ? 0 : parseAddress(options.address).port,
      ...(options.maxPacketBytes === undefined ? {} : { maxPacketBytes: options.maxPacketBytes }),
      ...(options.maxFrameBytes === undefined ? {} : { maxFrameBytes: options.maxFrameBytes }),
    }),
  unreachableAddress: async () => `127.0.0.1:${await freePort()}`,
  waitFor,
  settle: (promise) => promise,
}));

describe('udp+tcp specifics', () => {
  it('closes connections that send no complete frame within handshakeTimeoutMs; they never hold a stream slot', async () => {
    const server = await createNetTransport({ host: '127.0.0.1', port: 0, maxConcurrentStreams: 1, handshakeTimeoutMs: 150 });
    try {
      server.onStream(() => bytes('ok'));
      const { host, port } = parseAddress(server.localAddress);
      const openedAtMs = Date.now();
      const idle = [0, 1, 2].map(() => holdOpen(host, port));
      // While three idle connections are open, a member's request (one slot in all) is answered.
      const client = await createNetTransport({ host: '127.0.0.1', port: 0 });
      try {
        expect(new TextDecoder().decode(await client.request(server.localAddress, bytes('syn'), 5000))).toBe('ok');
      } finally {
        await client.close();
      }
      const closedAfterMs = await Promise.all(idle.map((c) => c.closed.then(() => Date.now() - openedAtMs)));
      for (const ms of closedAfterMs) expect(ms).toBeGreaterThanOrEqual(140);
      expect(server.stats()).toMatchObject({ streamsAccepted: 4, streamsHandshakeTimedOut: 3, streamsRefusedBusy: 0 });
    } finally {
      await server.close();
    }
  });

  it('bounds unauthenticated connections: the oldest is closed to admit a new one, so a member always gets in', async () => {
    const server = await createNetTransport({ host: '127.0.0.1', port: 0, maxPendingStreams: 20, maxConcurrentStreams: 2, handshakeTimeoutMs: 60_000 });
    const client = await createNetTransport({ host: '127.0.0.1', port: 0 });
    const idle: Held[] = [];
    try {
      server.onStream(() => bytes('ok'), (data) => new TextDecoder().decode(data) === 'member');
      const { host, port } = parseAddress(server.localAddress);
      // 100 idle outsiders, far more than the 20 pending places and the 2 slots.
      for (let i = 0; i < 100; i++) idle.push(holdOpen(host, port));
      await waitFor(() => server.stats().streamsAccepted >= 100);
      await waitFor(() => server.stats().streamsPendingEvicted >= 80);
      for (let i = 0; i < 5; i++) {
        expect(new TextDecoder().decode(await client.request(server.localAddress, bytes('member'), 5000))).toBe('ok');
      }
      // A frame that does not authenticate is refused without an answer.
      await expect(client.request(server.localAddress, bytes('outsider'), 5000)).rejects.toMatchObject({ code: 'TRANSPORT_NO_RESPONSE' });
      const stats = server.stats();
      expect(stats.streamsPendingEvicted).toBeGreaterThanOrEqual(80);
      expect(stats.streamsUnauthenticated).toBe(1);
      expect(stats.streamsRefusedBusy).toBe(0);
    } finally {
      for (const c of idle) c.socket.destroy();
      await client.close();
      await server.close();
    }
  });

  it('bounds the bytes unauthenticated connections buffer: the oldest trickler is closed first', async () => {
    const server = await createNetTransport({ host: '127.0.0.1', port: 0, maxFrameBytes: 1024, maxPendingBytes: 4096, handshakeTimeoutMs: 60_000 });
    const held: Held[] = [];
    try {
      server.onStream(() => bytes('ok'));
      const { host, port } = parseAddress(server.localAddress);
      // Each announces a 1000-byte frame and sends 900 bytes of it: five of them exceed 4096 buffered bytes.
      for (let i = 0; i < 5; i++) {
        const h = holdOpen(host, port);
        held.push(h);
        const prefix = Buffer.alloc(4);
        prefix.writeUInt32BE(1000);
        h.socket.write(Buffer.concat([prefix, Buffer.alloc(896)]));
        await waitFor(() => server.stats().streamBytesReceived >= 900 * (i + 1));
      }
      await held[0]!.closed;
      expect(server.stats().streamsPendingEvicted).toBe(1);
    } finally {
      for (const h of held) h.socket.destroy();
      await server.close();
    }
  });

  it('an authenticated stream beyond maxConcurrentStreams is refused and counted', async () => {
    const server = await createNetTransport({ host: '127.0.0.1', port: 0, maxConcurrentStreams: 1 });
    const client = await createNetTransport({ host: '127.0.0.1', port: 0 });
    try {
      let release: ((v: Uint8Array) => void) | undefined;
      server.onStream(() => new Promise<Uint8Array>((resolve) => (release = resolve)));
      const first = client.request(server.localAddress, bytes('one'), 5000);
      await waitFor(() => release !== undefined);
      await expect(client.request(server.localAddress, bytes('two'), 5000)).rejects.toMatchObject({ code: 'TRANSPORT_NO_RESPONSE' });
      release!(bytes('done'));
      expect(new TextDecoder().decode(await first)).toBe('done');
      expect(server.stats().streamsRefusedBusy).toBe(1);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('refuses to bind a port that is taken', async () => {
    const first = await createNetTransport({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = parseAddress(first.localAddress);
      await expect(createNetTransport({ host: '127.0.0.1', port })).rejects.toMatchObject({ code: 'TRANSPORT_BIND_FAILED' });
    } finally {
      await first.close();
    }
  });
});
