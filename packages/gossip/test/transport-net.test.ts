// The UDP/TCP transport on 127.0.0.1 through the shared conformance suite.
import { createServer } from 'node:net';
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
