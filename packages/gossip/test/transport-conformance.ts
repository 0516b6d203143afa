/**
 * The shared transport conformance suite (abstract-level's test suite style):
 * every `Transport` implementation runs these same tests through a harness.
 * A harness says how to make transports and how time passes: the real-socket
 * harness polls a condition with a deadline; the simulated one runs the
 * virtual scheduler until the condition holds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TransportError, type Address, type Transport } from '../src/transport.ts';

export interface CreateOptions {
  address?: Address;
  maxPacketBytes?: number;
  maxFrameBytes?: number;
}

export interface TransportHarness {
  /** A fresh transport on its own address, or on `address` (a restarted member rebinding its old one). */
  create(options?: CreateOptions): Promise<Transport>;
  /** An address nothing listens on. */
  unreachableAddress(): Promise<Address>;
  /** Resolve once `condition()` holds, letting (real or virtual) time pass; reject after `timeoutMs`. */
  waitFor(condition: () => boolean, timeoutMs?: number): Promise<void>;
  /** Await `promise`, letting time pass while it is pending. */
  settle<T>(promise: Promise<T>): Promise<T>;
  /** Release everything the harness made (e.g. the simulated world). */
  teardown?(): Promise<void>;
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return error instanceof TransportError ? error.code : `not a TransportError: ${String(error)}`;
  }
  return 'resolved';
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

export function transportConformance(name: string, makeHarness: () => TransportHarness): void {
  describe(`transport conformance: ${name}`, () => {
    let harness: TransportHarness;
    const open: Transport[] = [];
    const create = async (options?: CreateOptions): Promise<Transport> => {
      harness ??= makeHarness();
      const t = await harness.create(options);
      open.push(t);
      return t;
    };

    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
      await harness?.teardown?.();
      harness = undefined as unknown as TransportHarness;
    });

    it('reports a usable local address with a real port', async () => {
      const a = await create();
      const port = Number(a.localAddress.slice(a.localAddress.lastIndexOf(':') + 1));
      expect(port).toBeGreaterThan(0);
      const b = await create();
      expect(b.localAddress).not.toBe(a.localAddress);
    });

    it('delivers datagrams with the sender address, and the sender may reuse its buffer', async () => {
      const a = await create();
      const b = await create();
      const got: { from: Address; data: string }[] = [];
      b.onPacket((from, data) => got.push({ from, data: text(data) }));
      const buffer = Buffer.from(bytes('hello'));
      a.sendPacket(b.localAddress, buffer);
      buffer.write('XXXXX');
      a.sendPacket(b.localAddress, bytes('world'));
      await harness.waitFor(() => got.length === 2);
      expect(got.map((g) => g.data).sort()).toEqual(['hello', 'world']);
      expect(got.every((g) => g.from === a.localAddress)).toBe(true);
      expect(a.stats().packetsSent).toBe(2);
      expect(b.stats().packetsReceived).toBe(2);
    });

    it('accepts a datagram of exactly maxPacketBytes and refuses a larger one', async () => {
      const a = await create();
      const b = await create();
      let received = 0;
      b.onPacket((_from, data) => {
        received = data.byteLength;
      });
      a.sendPacket(b.localAddress, new Uint8Array(a.maxPacketBytes));
      await harness.waitFor(() => received === a.maxPacketBytes);
      expect(() => a.sendPacket(b.localAddress, new Uint8Array(a.maxPacketBytes + 1))).toThrow(
        expect.objectContaining({ code: 'TRANSPORT_PACKET_TOO_LARGE' }),
      );
    });

    it('refuses malformed addresses with TRANSPORT_BAD_ADDRESS', async () => {
      const a = await create();
      expect(() => a.sendPacket('no-port', bytes('x'))).toThrow(expect.objectContaining({ code: 'TRANSPORT_BAD_ADDRESS' }));
      expect(await rejection(harness.settle(a.request('host:99999', bytes('x'), 1000)))).toBe('TRANSPORT_BAD_ADDRESS');
    });

    it('drops datagrams to an unreachable peer without throwing, and rejects streams to it', async () => {
      const a = await create();
      const nowhere = await harness.unreachableAddress();
      expect(() => a.sendPacket(nowhere, bytes('lost'))).not.toThrow();
      const code = await rejection(harness.settle(a.request(nowhere, bytes('anyone?'), 500)));
      expect(['TRANSPORT_UNREACHABLE', 'TRANSPORT_TIMEOUT']).toContain(code);
      expect(a.stats().streamRequestErrors).toBe(1);
    });

    it('answers stream requests, sync and async, with large frames and no crosstalk', async () => {
      const a = await create();
      const b = await create();
      b.onStream(async (_from, data) => {
        const request = text(data);
        if (request.startsWith('async:')) await Promise.resolve();
        return bytes(`re:${request}`);
      });
      const requests = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? `async:${i}` : `sync:${i}`));
      const answers = await harness.settle(Promise.all(requests.map((r) => a.request(b.localAddress, bytes(r), 5000))));
      expect(answers.map(text)).toEqual(requests.map((r) => `re:${r}`));

      const big = new Uint8Array(512 * 1024).map((_, i) => i % 251);
      b.onStream((_from, data) => data);
      const echoed = await harness.settle(a.request(b.localAddress, big, 5000));
      expect(Buffer.from(echoed).equals(Buffer.from(big))).toBe(true);
      expect(b.stats().streamsAccepted).toBe(21);
    });

    it('allows an empty response frame (an acknowledgement)', async () => {
      const a = await create();
      const b = await create();
      b.onStream(() => new Uint8Array(0));
      const answer = await harness.settle(a.request(b.localAddress, bytes('one-way'), 5000));
      expect(answer.byteLength).toBe(0);
    });

    it('rejects with TRANSPORT_NO_RESPONSE when the handler declines or throws', async () => {
      const a = await create();
      const b = await create();
      b.onStream(() => undefined);
      expect(await rejection(harness.settle(a.request(b.localAddress, bytes('x'), 5000)))).toBe('TRANSPORT_NO_RESPONSE');
      b.onStream(() => {
        throw new Error('handler bug');
      });
      expect(await rejection(harness.settle(a.request(b.localAddress, bytes('x'), 5000)))).toBe('TRANSPORT_NO_RESPONSE');
      expect(b.stats().handlerErrors).toBe(1);
      expect(b.stats().streamsDropped).toBe(2);
    });

    it('answers a stream only once its first frame passes the authenticator, and counts the refused', async () => {
      const a = await create();
      const b = await create();
      const seen: string[] = [];
      b.onStream(
        (_from, data) => {
          seen.push(text(data));
          return bytes('welcome');
        },
        (data) => text(data).startsWith('member:'),
      );
      expect(await rejection(harness.settle(a.request(b.localAddress, bytes('outsider'), 5000)))).toBe('TRANSPORT_NO_RESPONSE');
      expect(text(await harness.settle(a.request(b.localAddress, bytes('member:a'), 5000)))).toBe('welcome');
      expect(seen).toEqual(['member:a']);
      expect(b.stats()).toMatchObject({ streamsUnauthenticated: 1, streamsDropped: 1 });
    });

    it('rejects with TRANSPORT_TIMEOUT when the peer never answers', async () => {
      const a = await create();
      const b = await create();
      b.onStream(() => new Promise<undefined>(() => {}));
      expect(await rejection(harness.settle(a.request(b.localAddress, bytes('x'), 200)))).toBe('TRANSPORT_TIMEOUT');
    });

    it('bounds frames: an oversize request is refused locally, an oversize response is dropped by the server', async () => {
      const a = await create({ maxFrameBytes: 4096 });
      const b = await create({ maxFrameBytes: 4096 });
      b.onStream(() => new Uint8Array(4097));
      expect(await rejection(harness.settle(a.request(b.localAddress, new Uint8Array(4097), 5000)))).toBe('TRANSPORT_FRAME_TOO_LARGE');
      expect(await rejection(harness.settle(a.request(b.localAddress, bytes('x'), 5000)))).toBe('TRANSPORT_NO_RESPONSE');
      // A peer that allows bigger frames cannot push one into us either.
      const big = await create({ maxFrameBytes: 1 << 20 });
      let handled = 0;
      b.onStream(() => {
        handled++;
        return bytes('ok');
      });
      expect(await rejection(harness.settle(big.request(b.localAddress, new Uint8Array(8192), 5000)))).toBe('TRANSPORT_NO_RESPONSE');
      expect(handled).toBe(0);
    });

    it('closes cleanly: idempotent, in-flight requests rejected, nothing delivered afterwards', async () => {
      const a = await create();
      const b = await create();
      let packets = 0;
      let streams = 0;
      b.onPacket(() => packets++);
      b.onStream(() => {
        streams++;
        return new Promise<undefined>(() => {});
      });
      const inFlight = a.request(b.localAddress, bytes('pending'), 10_000);
      await harness.waitFor(() => streams === 1);
      const closing = a.close();
      expect(await rejection(harness.settle(inFlight))).toBe('TRANSPORT_CLOSED');
      await harness.settle(closing);
      await harness.settle(a.close());
      expect(() => a.sendPacket(b.localAddress, bytes('after close'))).not.toThrow();
      expect(await rejection(harness.settle(a.request(b.localAddress, bytes('x'), 1000)))).toBe('TRANSPORT_CLOSED');

      const bAddress = b.localAddress;
      await harness.settle(b.close());
      const c = await create();
      c.sendPacket(bAddress, bytes('to the closed one'));
      const code = await rejection(harness.settle(c.request(bAddress, bytes('x'), 300)));
      expect(['TRANSPORT_UNREACHABLE', 'TRANSPORT_TIMEOUT']).toContain(code);
      // Give a stray datagram every chance to arrive, then check it did not.
      let echoed = false;
      const d = await create();
      d.onPacket(() => {
        echoed = true;
      });
      c.sendPacket(d.localAddress, bytes('marker'));
      await harness.waitFor(() => echoed);
      expect(packets).toBe(0);
      expect(streams).toBe(1);
    });

    it('lets a restarted member bind its old address again', async () => {
      const a = await create();
      const b = await create();
      const address = b.localAddress;
      await harness.settle(b.close());
      const again = await create({ address });
      expect(again.localAddress).toBe(address);
      let got = '';
      again.onPacket((_f, d) => {
        got = text(d);
      });
      a.sendPacket(address, bytes('welcome back'));
      await harness.waitFor(() => got === 'welcome back');
    });
  });
}
