import { describe, expect, it } from 'vitest';
import { Codec } from './codec.ts';
import { parseMessage } from './message-parser.ts';
import { MessageType, type Digest, type MemberRecord, type Message, type StateEntry } from './messages.ts';

const entry: StateEntry = { key: 'http', value: '127.0.0.1:7000', version: 3 };
const digest: Digest = { id: 'n2', generation: 5, incarnation: 1, status: 'alive', version: 3, heartbeat: 0 };
const record: MemberRecord = { id: 'n2', address: '127.0.0.1:7947', generation: 5, incarnation: 1, status: 'suspect', heartbeat: 0, version: 1, entries: [entry] };

/** One sample per message type. A type added to messages.ts without a sample here fails the coverage test. */
export const SAMPLE_MESSAGES: Message[] = [
  { type: MessageType.Ping, seqNo: 1, target: 'n2', source: 'n1', sourceAddr: '127.0.0.1:7946' },
  { type: MessageType.PingReq, seqNo: 2, target: 'n3', targetAddr: '127.0.0.1:7948', source: 'n1', sourceAddr: '127.0.0.1:7946', nack: true },
  { type: MessageType.Ack, seqNo: 1, source: 'n2', wallMs: 1_767_225_600_123.5 },
  { type: MessageType.Nack, seqNo: 2, source: 'n2' },
  { type: MessageType.Suspect, id: 'n3', generation: 1, incarnation: 0, from: 'n1' },
  { type: MessageType.Alive, id: 'n3', address: '127.0.0.1:7948', generation: 1, incarnation: 1 },
  { type: MessageType.Dead, id: 'n3', generation: 1, incarnation: 1, from: 'n1' },
  { type: MessageType.Left, id: 'n4', generation: 2, incarnation: 0 },
  { type: MessageType.StateUpdate, id: 'n1', generation: 7, base: 0, entries: [entry] },
  { type: MessageType.Heartbeat, id: 'n1', generation: 7, counter: 42 },
  { type: MessageType.PullReq, source: 'n1', sourceAddr: '127.0.0.1:7946' },
  { type: MessageType.Syn, source: 'n1', sourceAddr: '127.0.0.1:7946', join: false, digests: [digest] },
  { type: MessageType.SynAck, source: 'n2', records: [record], requests: [digest] },
  { type: MessageType.SynAck2, source: 'n1', records: [record] },
  { type: MessageType.UserEvent, origin: 'n1', generation: 7, seq: 3, name: 'deploy', payload: new Uint8Array([1, 2, 3]) },
];

/** The optional fields added after wire version 1, each present. */
const userEvent = SAMPLE_MESSAGES.find((m) => m.type === MessageType.UserEvent)!;
export const SAMPLE_WITH_OPTIONAL_FIELDS: Message[] = [
  { type: MessageType.Syn, source: 'n1', sourceAddr: '127.0.0.1:7946', join: false, digests: [{ ...digest, events: 4 }] },
  { type: MessageType.SynAck, source: 'n2', records: [{ ...record, events: 2 }], requests: [{ ...digest, events: 1 }], events: [userEvent as never] },
  { type: MessageType.SynAck2, source: 'n1', records: [record], events: [userEvent as never] },
];

describe('parseMessage', () => {
  it('has a sample for every message type', () => {
    const sampled = new Set(SAMPLE_MESSAGES.map((m) => m.type));
    expect(Object.values(MessageType).filter((t) => !sampled.has(t))).toEqual([]);
  });

  it('round-trips every message type through the codec unchanged', () => {
    const codec = new Codec({ parse: parseMessage, maxPacketBytes: 4096 });
    for (const message of SAMPLE_MESSAGES) {
      const r = codec.decodeFrame(codec.encodeFrame([message]));
      expect(r).toEqual({ ok: true, messages: [message], dropped: [] });
    }
  });

  it('round-trips the optional fields added after wire version 1 (clock, user event floors and events)', () => {
    const codec = new Codec({ parse: parseMessage, maxPacketBytes: 4096 });
    for (const message of SAMPLE_WITH_OPTIONAL_FIELDS) {
      expect(codec.decodeFrame(codec.encodeFrame([message]))).toEqual({ ok: true, messages: [message], dropped: [] });
    }
  });

  it('copies a user event payload out of the datagram it arrived in', () => {
    const codec = new Codec({ parse: parseMessage, maxPacketBytes: 4096 });
    const packet = codec.packPackets([userEvent as never]).packets[0]!;
    const r = codec.decodePacket(packet);
    expect(r.ok).toBe(true);
    const got = r.ok ? (r.messages[0] as typeof userEvent & { payload: Uint8Array }) : undefined;
    packet.fill(0);
    expect([...got!.payload]).toEqual([1, 2, 3]);
  });

  it('ignores extra fields from newer members and rebuilds plain objects', () => {
    const r = parseMessage({ ...SAMPLE_MESSAGES[2], futureField: [1, 2, 3] });
    expect(r).toEqual({ ok: true, message: SAMPLE_MESSAGES[2] });
  });

  it('decodes an Ack without the wall clock (older members, or none), and keeps it absent', () => {
    const codec = new Codec({ parse: parseMessage, maxPacketBytes: 4096 });
    const old = { type: MessageType.Ack, seqNo: 9, source: 'n2' } as const;
    const r = codec.decodePacket(codec.packPackets([old]).packets[0]!);
    expect(r).toEqual({ ok: true, messages: [old], dropped: [] });
    expect(r.ok && 'wallMs' in r.messages[0]!).toBe(false);
  });

  const cases: [string, unknown, 'malformed' | 'unknown-type'][] = [
    ['payload not bytes', { type: MessageType.UserEvent, origin: 'n1', generation: 1, seq: 1, name: 'x', payload: 'abc' }, 'malformed'],
    ['bad events floor', { type: MessageType.Syn, source: 'n1', sourceAddr: 'a:1', join: false, digests: [{ ...digest, events: -1 }] }, 'malformed'],
    ['event list with another message', { type: MessageType.SynAck2, source: 'n1', records: [], events: [{ type: MessageType.Ack, seqNo: 1, source: 'x' }] }, 'malformed'],
    ['negative wall clock', { type: MessageType.Ack, seqNo: 1, source: 'n2', wallMs: -5 }, 'malformed'],
    ['wall clock as string', { type: MessageType.Ack, seqNo: 1, source: 'n2', wallMs: '12' }, 'malformed'],
    ['infinite wall clock', { type: MessageType.Ack, seqNo: 1, source: 'n2', wallMs: Infinity }, 'malformed'],
    ['not an object', 42, 'malformed'],
    ['null', null, 'malformed'],
    ['an array', [1, 'n1'], 'malformed'],
    ['a Map', new Map([['type', 3]]), 'malformed'],
    ['no type', { seqNo: 1, source: 'n2' }, 'malformed'],
    ['type as string', { type: '3', seqNo: 1, source: 'n2' }, 'malformed'],
    ['a future type', { type: 200, anything: true }, 'unknown-type'],
    ['missing field', { type: MessageType.Ack, seqNo: 1 }, 'malformed'],
    ['fractional counter', { type: MessageType.Ack, seqNo: 1.5, source: 'n2' }, 'malformed'],
    ['negative counter', { type: MessageType.Ack, seqNo: -1, source: 'n2' }, 'malformed'],
    ['NaN counter', { type: MessageType.Ack, seqNo: Number.NaN, source: 'n2' }, 'malformed'],
    ['bigint counter', { type: MessageType.Ack, seqNo: 1n, source: 'n2' }, 'malformed'],
    ['overlong string', { type: MessageType.Ack, seqNo: 1, source: 'x'.repeat(5000) }, 'malformed'],
    ['bad status', { type: MessageType.SynAck2, source: 'n1', records: [{ ...record, status: 'zombie' }] }, 'malformed'],
    ['entries not an array', { type: MessageType.StateUpdate, id: 'n1', generation: 1, entries: { key: 'a' } }, 'malformed'],
    ['bad entry', { type: MessageType.StateUpdate, id: 'n1', generation: 1, entries: [{ key: 'a', value: 1, version: 1 }] }, 'malformed'],
  ];
  it.each(cases)('drops %s', (_name, value, reason) => {
    expect(parseMessage(value)).toEqual({ ok: false, reason });
  });
});
