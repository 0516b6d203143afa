import { describe, expect, it } from 'vitest';
import { Codec, DEFAULT_MAX_PACKET_BYTES, type MessageParser, type ParseResult } from './codec.ts';
import { generateKey, Keyring } from './keyring.ts';

// A stand-in message set, so the envelope is tested apart from the protocol's
// messages (those are covered in message-parser.test.ts).
type Toy = { type: 1; seq: number; pad: string } | { type: 2; name: string };

const parseToy: MessageParser<Toy> = (value): ParseResult<Toy> => {
  if (typeof value !== 'object' || value === null) return { ok: false, reason: 'malformed' };
  const v = value as Record<string, unknown>;
  if (v['type'] === 1 && typeof v['seq'] === 'number' && typeof v['pad'] === 'string') {
    return { ok: true, message: { type: 1, seq: v['seq'], pad: v['pad'] } };
  }
  if (v['type'] === 2 && typeof v['name'] === 'string') return { ok: true, message: { type: 2, name: v['name'] } };
  return { ok: false, reason: typeof v['type'] === 'number' && v['type'] > 2 ? 'unknown-type' : 'malformed' };
};

function toys(count: number, padBytes: number): Toy[] {
  return Array.from({ length: count }, (_, seq) => ({ type: 1, seq, pad: 'x'.repeat(padBytes) }));
}

function decodeAll(codec: Codec<Toy>, packets: Uint8Array[]): Toy[] {
  return packets.flatMap((p) => {
    const r = codec.decodePacket(p);
    if (!r.ok) throw new Error(`dropped: ${r.reason}`);
    return r.messages;
  });
}

describe('Codec', () => {
  for (const encrypted of [false, true]) {
    describe(encrypted ? 'encrypted' : 'plaintext', () => {
      const keyring = encrypted ? new Keyring([generateKey()]) : undefined;
      const codec = new Codec<Toy>({ parse: parseToy, label: 'prod-eu', ...(keyring ? { keyring } : {}) });

      it('round-trips a compound packet', () => {
        const messages: Toy[] = [{ type: 2, name: 'a' }, ...toys(3, 10)];
        const { packets, tooLarge } = codec.packPackets(messages);
        expect(packets).toHaveLength(1);
        expect(tooLarge).toEqual([]);
        expect(decodeAll(codec, packets)).toEqual(messages);
      });

      it('packs many messages into datagrams that respect maxPacketBytes, in order', () => {
        const messages = toys(400, 37);
        const { packets } = codec.packPackets(messages);
        for (const p of packets) expect(p.byteLength).toBeLessThanOrEqual(DEFAULT_MAX_PACKET_BYTES);
        expect(packets.length).toBeGreaterThan(1);
        // Greedy packing: every packet but the last is nearly full.
        for (const p of packets.slice(0, -1)) expect(p.byteLength).toBeGreaterThan(DEFAULT_MAX_PACKET_BYTES - 60);
        expect(decodeAll(codec, packets)).toEqual(messages);
      });

      it('packs a message object sent many times (a rumor) the same way every time, whatever was packed in between', () => {
        const rumor: Toy = { type: 2, name: 'rumor' };
        const first = decodeAll(codec, codec.packPackets([rumor]).packets);
        // Plenty of other messages between the rumor's sends (its bytes are encoded once and kept).
        for (let i = 0; i < 50; i++) codec.packPackets(toys(200, 300));
        const again = decodeAll(codec, codec.packPackets([toys(1, 5)[0]!, rumor]).packets);
        expect(first).toEqual([rumor]);
        expect(again).toEqual([{ type: 1, seq: 0, pad: 'xxxxx' }, rumor]);
      });

      it('returns a message too large for any datagram instead of sending it', () => {
        const big: Toy = { type: 1, seq: 0, pad: 'y'.repeat(2000) };
        const { packets, tooLarge } = codec.packPackets([{ type: 2, name: 'ok' }, big]);
        expect(tooLarge).toEqual([big]);
        expect(decodeAll(codec, packets)).toEqual([{ type: 2, name: 'ok' }]);
      });

      it('fits a message of exactly messageBudgetBytes in one datagram, and refuses one byte more', () => {
        const overhead = Codec.messageBytes({ type: 1, seq: 0, pad: '' }) + 2; // '' is a 1-byte fixstr, a pad this long a 3-byte str16
        const exact: Toy = { type: 1, seq: 0, pad: 'z'.repeat(codec.messageBudgetBytes - overhead) };
        expect(Codec.messageBytes(exact)).toBe(codec.messageBudgetBytes);
        const fit = codec.packPackets([exact]);
        expect(fit.packets).toHaveLength(1);
        expect(fit.packets[0]!.byteLength).toBeLessThanOrEqual(codec.maxPacketBytes);
        const over: Toy = { ...exact, pad: `${exact.pad}z` };
        expect(codec.packPackets([over]).tooLarge).toEqual([over]);
      });

      it('round-trips a large stream frame, which a datagram could not carry', () => {
        const messages = toys(1, 100_000);
        const frame = codec.encodeFrame(messages);
        const r = codec.decodeFrame(frame);
        expect(r.ok && r.messages).toEqual(messages);
        expect(codec.decodePacket(frame)).toEqual({ ok: false, reason: 'oversize' });
      });

      it('refuses a datagram on the stream path and a frame on the packet path', () => {
        const small = codec.encodeFrame([{ type: 2, name: 'x' }]);
        expect(codec.decodePacket(small)).toEqual({ ok: false, reason: 'wrong-kind' });
        const packet = codec.packPackets([{ type: 2, name: 'x' }]).packets[0]!;
        expect(codec.decodeFrame(packet)).toEqual({ ok: false, reason: 'wrong-kind' });
      });

      it('drops traffic from another cluster label', () => {
        const other = new Codec<Toy>({ parse: parseToy, label: 'prod-us', ...(keyring ? { keyring } : {}) });
        const packet = other.packPackets([{ type: 2, name: 'intruder' }]).packets[0]!;
        expect(codec.decodePacket(packet)).toEqual({ ok: false, reason: 'wrong-label' });
        const unlabelled = new Codec<Toy>({ parse: parseToy, ...(keyring ? { keyring } : {}) });
        expect(codec.decodePacket(unlabelled.packPackets([{ type: 2, name: 'x' }]).packets[0]!)).toEqual({ ok: false, reason: 'wrong-label' });
      });

      it('drops unknown message types one by one and keeps the rest of the packet', () => {
        const mixed = [{ type: 2, name: 'kept' }, { type: 99, future: true }, { type: 1, seq: 'bad' }] as unknown as Toy[];
        const r = codec.decodePacket(codec.packPackets(mixed).packets[0]!);
        expect(r).toEqual({ ok: true, messages: [{ type: 2, name: 'kept' }], dropped: ['unknown-type', 'malformed'] });
      });

      it('classifies truncated and garbled input, never throwing', () => {
        const packet = codec.packPackets(toys(5, 20)).packets[0]!;
        const reasons = new Set<string>();
        for (let cut = 0; cut < packet.byteLength; cut++) {
          const r = codec.decodePacket(packet.subarray(0, cut));
          expect(r.ok).toBe(false);
          if (!r.ok) reasons.add(r.reason);
        }
        expect(reasons.has('truncated')).toBe(true);
        expect(codec.decodePacket(Buffer.from([0x00, 1, 0, 0]))).toEqual({ ok: false, reason: 'bad-header' });
        expect(codec.decodePacket(Buffer.from([0xa7, 9, 0, 0]))).toEqual({ ok: false, reason: 'bad-header' });
      });
    });
  }

  it('drops plaintext when encryption is required, and ciphertext without a keyring', () => {
    const keyring = new Keyring([generateKey()]);
    const secure = new Codec<Toy>({ parse: parseToy, keyring });
    const plain = new Codec<Toy>({ parse: parseToy });
    expect(secure.decodePacket(plain.packPackets([{ type: 2, name: 'x' }]).packets[0]!)).toEqual({ ok: false, reason: 'encryption-mismatch' });
    expect(plain.decodePacket(secure.packPackets([{ type: 2, name: 'x' }]).packets[0]!)).toEqual({ ok: false, reason: 'encryption-mismatch' });
  });

  it('turns encryption on in steps: accept both while sending plaintext, then send sealed, then refuse plaintext', () => {
    const keyring = new Keyring([generateKey()]);
    const plain = new Codec<Toy>({ parse: parseToy });
    const migrating = new Codec<Toy>({ parse: parseToy, keyring, encryption: { encryptOutgoing: false, acceptPlaintext: true } });
    const strict = new Codec<Toy>({ parse: parseToy, keyring });
    const msg: Toy[] = [{ type: 2, name: 'x' }];
    const from = (c: Codec<Toy>): Uint8Array => c.packPackets(msg).packets[0]!;
    // Step 1: the migrating member and a plaintext member understand each other.
    expect(migrating.encrypted).toBe(false);
    expect(plain.decodePacket(from(migrating)).ok).toBe(true);
    expect(migrating.decodePacket(from(plain)).ok).toBe(true);
    expect(migrating.decodePacket(from(strict)).ok).toBe(true);
    // Step 2: it seals what it sends, still reads plaintext.
    migrating.setEncryptionPolicy({ encryptOutgoing: true });
    expect(migrating.encrypted).toBe(true);
    expect(strict.decodePacket(from(migrating)).ok).toBe(true);
    expect(migrating.decodePacket(from(plain)).ok).toBe(true);
    // Step 3: strict.
    migrating.setEncryptionPolicy({ acceptPlaintext: false });
    expect(migrating.decodePacket(from(plain))).toEqual({ ok: false, reason: 'encryption-mismatch' });
    expect(migrating.encryptionPolicy).toEqual({ encryptOutgoing: true, acceptPlaintext: false });
    // The datagram budget assumes sealing whenever a keyring is installed, so it never shrinks mid-run.
    expect(new Codec<Toy>({ parse: parseToy, keyring, encryption: { encryptOutgoing: false } }).messageBudgetBytes).toBe(strict.messageBudgetBytes);
  });

  it('drops a packet sealed with a key we do not hold, and accepts it once the key is added', () => {
    const k1 = generateKey();
    const k2 = generateKey();
    const sender = new Codec<Toy>({ parse: parseToy, keyring: new Keyring([k2]) });
    const receiverRing = new Keyring([k1]);
    const receiver = new Codec<Toy>({ parse: parseToy, keyring: receiverRing });
    const packet = sender.packPackets([{ type: 2, name: 'x' }]).packets[0]!;
    expect(receiver.decodePacket(packet)).toEqual({ ok: false, reason: 'undecryptable' });
    receiverRing.addKey(k2);
    expect(receiver.decodePacket(packet).ok).toBe(true);
  });

  it('authenticates the label: rewriting it in flight makes the packet undecryptable', () => {
    const keyring = new Keyring([generateKey()]);
    const a = new Codec<Toy>({ parse: parseToy, keyring, label: 'aaaa' });
    const b = new Codec<Toy>({ parse: parseToy, keyring, label: 'bbbb' });
    const packet = Buffer.from(a.packPackets([{ type: 2, name: 'x' }]).packets[0]!);
    packet.write('bbbb', 4, 'utf8');
    expect(b.decodePacket(packet)).toEqual({ ok: false, reason: 'undecryptable' });
  });

  it('rejects bad options with typed errors', () => {
    expect(() => new Codec<Toy>({ parse: parseToy, label: 'x'.repeat(256) })).toThrow(expect.objectContaining({ code: 'CODEC_BAD_LABEL' }));
    expect(() => new Codec<Toy>({ parse: parseToy, maxPacketBytes: 10 })).toThrow(expect.objectContaining({ code: 'CODEC_BAD_LIMIT' }));
  });
});
