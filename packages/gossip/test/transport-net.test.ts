// The UDP/TCP transport on 127.0.0.1 through the shared conformance suite.
import { connect, createServer } from 'node:net';
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
  it('bounds concurrent incoming streams and drops idle ones after streamTimeoutMs', async () => {
    const server = await createNetTransport({ host: '127.0.0.1', port: 0, maxConcurrentStreams: 2, streamTimeoutMs: 150 });
    try {
      const { host, port } = parseAddress(server.localAddress);
      const closedAtMs: number[] = [];
      const openedAtMs = Date.now();
      // Three idle connections: the third is over the bound and closed at once; the other two time out.
      await Promise.all(
        [0, 1, 2].map(
          () =>
            new Promise<void>((resolve) => {
              const socket = connect({ host, port });
              socket.on('error', () => {});
              socket.on('close', () => {
                closedAtMs.push(Date.now() - openedAtMs);
                resolve();
              });
            }),
        ),
      );
      const stats = server.stats();
      expect(stats.streamsAccepted).toBe(2);
      expect(stats.streamsDropped).toBe(3);
      expect(closedAtMs.filter((ms) => ms >= 140)).toHaveLength(2);
    } finally {
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
