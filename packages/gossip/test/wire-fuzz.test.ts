// Fuzzing the wire boundary. Part one feeds the decoder directly (fast, many
// cases). Part two fires random, truncated and garbled datagrams and stream
// frames at running members over real sockets: nothing may throw into the
// loop, every bad input is dropped and counted, and membership stays as it
// was. Inputs come from a seeded PRNG; the seed is printed on failure and can
// be pinned with HEARSAY_SEED.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { createRandom, seedFromEnv, type Random } from '@hearsay/sim';
import { Packr } from 'msgpackr';
import { afterAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { Codec, DROP_REASONS } from '../src/codec.ts';
import type { GossipTuning } from '../src/config.ts';
import { generateKey, Keyring } from '../src/keyring.ts';
import { parseMessage } from '../src/message-parser.ts';
import { MessageType, type Message } from '../src/messages.ts';
import { startGossip, type GossipRuntime } from '../src/runtime.ts';
import { parseAddress } from '../src/transport.ts';

const SEED = seedFromEnv();
const LABEL = 'fuzz';
const packr = new Packr({ useRecords: false });

function randomBytes(random: Random, maxBytes: number): Uint8Array {
  const out = new Uint8Array(random.int(maxBytes + 1));
  for (let i = 0; i < out.length; i++) out[i] = random.int(256);
  return out;
}

/** A random plain value, biased towards the shapes messages have. */
function randomValue(random: Random, depth = 0): unknown {
  const pick = random.int(depth > 3 ? 6 : 9);
  switch (pick) {
    case 0:
      return random.int(1000) - 10;
    case 1:
      return random.next() * 1e13;
    case 2:
      return 'x'.repeat(random.int(20));
    case 3:
      return random.chance(0.5);
    case 4:
      return null;
    case 5:
      return randomBytes(random, 16);
    case 6:
      return Array.from({ length: random.int(4) }, () => randomValue(random, depth + 1));
    default: {
      const o: Record<string, unknown> = { type: random.int(20) };
      for (const key of ['id', 'seqNo', 'source', 'generation', 'entries', 'records', 'digests']) {
        if (random.chance(0.4)) o[key] = randomValue(random, depth + 1);
      }
      return o;
    }
  }
}

const VALID: Message[] = [
  { type: MessageType.Ping, seqNo: 7, target: 'm1', source: 'stranger', sourceAddr: '127.0.0.1:1' },
  { type: MessageType.StateUpdate, id: 'm1', generation: 1, base: 0, entries: [{ key: 'k', value: 'v', version: 1 }] },
];

/** One hostile input built from a valid encoding: truncated, bit-flipped, re-labelled, or random. */
function hostile(random: Random, valid: Uint8Array, codec: Codec<Message>, frame: boolean): Uint8Array {
  switch (random.int(6)) {
    case 0:
      return valid.subarray(0, random.int(valid.byteLength));
    case 1: {
      const copy = Uint8Array.from(valid);
      for (let flips = 1 + random.int(3); flips > 0; flips--) copy[random.int(copy.length)]! ^= 1 << random.int(8);
      return copy;
    }
    case 2: {
      // A valid envelope around random msgpack.
      const header = valid.subarray(0, 4 + LABEL.length);
      return Buffer.concat([header, packr.pack(Array.from({ length: 1 + random.int(3) }, () => randomValue(random)))]);
    }
    case 3: {
      const other = new Codec<Message>({ parse: parseMessage, label: 'other-cluster' });
      return frame ? other.encodeFrame(VALID) : other.packPackets(VALID).packets[0]!;
    }
    case 4:
      return randomBytes(random, 64);
    default:
      return Buffer.concat([valid.subarray(0, 4 + LABEL.length), randomBytes(random, codec.maxPacketBytes - 20)]);
  }
}

describe('wire fuzz', () => {
  beforeEach(() => {
    onTestFailed(() => console.error(`wire fuzz failed with seed ${SEED} (rerun with HEARSAY_SEED=${SEED})`));
  });

  it('the decoder classifies 8000 hostile inputs without throwing', () => {
    const random = createRandom(SEED);
    for (const keyring of [undefined, new Keyring([generateKey()])]) {
      const codec = new Codec<Message>({ parse: parseMessage, label: LABEL, ...(keyring ? { keyring } : {}) });
      const packet = codec.packPackets(VALID).packets[0]!;
      const frame = codec.encodeFrame(VALID);
      let dropped = 0;
      const reasons = new Set<string>();
      const accepted: Message[] = [];
      for (let i = 0; i < 4000; i++) {
        const asFrame = random.chance(0.5);
        const input = hostile(random, asFrame ? frame : packet, codec, asFrame);
        const r = asFrame ? codec.decodeFrame(input) : codec.decodePacket(input);
        if (!r.ok) {
          reasons.add(r.reason);
          dropped++;
        } else {
          accepted.push(...r.messages);
          dropped += r.dropped.length > 0 ? 1 : 0;
        }
      }
      expect([...reasons].filter((reason) => !(DROP_REASONS as readonly string[]).includes(reason))).toEqual([]);
      // Whatever got through is a well-formed message (a bit flip inside a plaintext string).
      for (const m of accepted) expect(parseMessage(m)).toEqual({ ok: true, message: m });
      // Almost everything is dropped; only a lucky bit flip inside a plaintext string survives.
      expect(dropped).toBeGreaterThan(keyring ? 3990 : 3200);
    }
  });

  describe('against running members over real sockets', () => {
    // Probing is slowed right down so that, on a loaded machine, no false suspicion
    // (and refutation) changes membership during the test: any change would come
    // from the fuzz input. Joining and gossip stay fast.
    const FAST: Partial<GossipTuning> = { probeIntervalMs: 60_000, probeTimeoutMs: 30_000, gossipIntervalMs: 40, pushPullIntervalMs: 300, joinRetryMs: 100 };
    const members: GossipRuntime[] = [];
    afterAll(async () => {
      await Promise.all(members.map((m) => m.stop({ leave: false })));
    });

    async function waitFor(what: string, condition: () => boolean, timeoutMs = 8000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (seed ${SEED})`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }

    const view = (r: GossipRuntime): string =>
      JSON.stringify(
        r
          .members()
          .map((m) => [m.id, m.status, m.generation, m.incarnation])
          .sort(),
      );

    it('drops and counts random, truncated and garbled datagrams and frames; membership is unchanged', async () => {
      const random = createRandom(SEED);
      for (const id of ['m0', 'm1', 'm2']) {
        const seeds = members.length === 0 ? [] : [members[0]!.localAddress];
        members.push(await startGossip({ id, host: '127.0.0.1', port: 0, seeds, label: LABEL, config: FAST }));
      }
      await waitFor('three members alive everywhere', () => members.every((r) => r.members().filter((m) => m.status === 'alive').length === 3));
      const target = members[1]!;
      const before = members.map(view);
      const droppedBefore = target.stats().droppedTotal;
      const codec = new Codec<Message>({ parse: parseMessage, label: LABEL });
      const { host, port } = parseAddress(target.localAddress);

      // Datagrams, in batches so loopback buffers never overflow.
      const udp = createSocket('udp4');
      let sent = 0;
      for (let batch = 0; batch < 10; batch++) {
        for (let i = 0; i < 40; i++) {
          const input = hostile(random, codec.packPackets(VALID).packets[0]!, codec, false);
          if (input.byteLength === 0) continue;
          udp.send(input, port, host);
          sent++;
        }
        const expected = droppedBefore + sent * 0.95;
        await waitFor('datagram drops counted', () => target.stats().droppedTotal >= expected);
      }
      udp.close();

      // Stream frames: hostile bodies, lying length prefixes, connections cut mid-frame.
      const streamsDroppedBefore = target.stats().transport.streamsDropped;
      const frameDropsBefore = target.stats().droppedTotal;
      let cut = 0;
      for (let i = 0; i < 40; i++) {
        const body = hostile(random, codec.encodeFrame(VALID), codec, true);
        const prefix = Buffer.alloc(4);
        const mode = random.int(3);
        if (mode === 0) prefix.writeUInt32BE(body.byteLength);
        else if (mode === 1) prefix.writeUInt32BE(body.byteLength + 1 + random.int(100));
        else prefix.writeUInt32BE(0xffffffff);
        if (mode !== 0) cut++;
        await new Promise<void>((resolve) => {
          const socket = connect({ host, port }, () => socket.end(Buffer.concat([prefix, body])));
          socket.on('data', () => {});
          socket.on('error', () => resolve());
          socket.on('close', () => resolve());
        });
      }
      await waitFor('stream drops counted', () => {
        const s = target.stats();
        return s.transport.streamsDropped - streamsDroppedBefore >= cut && s.droppedTotal > frameDropsBefore;
      });

      const after = target.stats();
      expect(after.internalErrors).toBe(0);
      expect(after.transport.handlerErrors).toBe(0);
      expect(after.drops['wrong-label']).toBeGreaterThan(0);
      expect(after.drops.truncated + after.drops.malformed).toBeGreaterThan(0);
      expect(members.map(view)).toEqual(before);

      // And the cluster still works: a state change reaches everyone.
      target.setLocalState('after-fuzz', 'yes');
      await waitFor('state spreads after the fuzz', () => members.every((r) => r.member('m1')?.state['after-fuzz'] === 'yes'));
    });
  });
});
