import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { compareVersions } from '@hearsay/storage';
import type { StoredRecord } from '@hearsay/storage';
import {
  createMemoryPeer, createRepairResponder, decodeReply, decodeRequest, encodeMessage, FIELD_ORDER, handleRepairRequest, isRepairError,
  MessageType, PROTOCOL_VERSION, repairRange, RepairError,
} from '../src/index.ts';
import { dump, openMemoryStore, seededSalt, virtualClock } from './helpers.ts';

const packr = new Packr({ useRecords: false });
const salt = seededSalt(7);
const open = { t: MessageType.Open, v: PROTOCOL_VERSION, from: 0, to: 64, bits: 6, salt };
/** The wire form of a message with any field values (also ones encodeMessage's types refuse). */
const wire = (m: Record<string, unknown> & { t: number }): Buffer =>
  packr.pack([m.t, ...(FIELD_ORDER[m.t] ?? []).map((f) => m[f])]);
const level = { t: MessageType.Level, from: 0, to: 64, bits: 6, salt, hb: 8, level: 2, span: 2, parents: [0] };

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (!(e instanceof RepairError)) throw e;
    return e.code;
  }
}

describe('decodeRequest: malformed input is a typed error', () => {
  const cases: [string, Uint8Array, string | undefined][] = [
    ['a valid Open', encodeMessage(open), undefined],
    ['not MessagePack', Buffer.from([0xd9]), 'MALFORMED_MESSAGE'],
    ['truncated', encodeMessage(open).subarray(0, 10), 'MALFORMED_MESSAGE'],
    ['a valid Level', encodeMessage(level), undefined],
    ['extra trailing fields (a newer peer)', packr.pack([MessageType.Open, 1, 0, 64, 6, salt, 'future']), undefined],
    ['a number', packr.pack(42), 'MALFORMED_MESSAGE'],
    ['a map', packr.pack({ t: 1 }), 'MALFORMED_MESSAGE'],
    ['an empty array', packr.pack([]), 'MALFORMED_MESSAGE'],
    ['a string type', packr.pack(['1']), 'UNKNOWN_MESSAGE_TYPE'],
    ['unknown type', packr.pack([99]), 'UNKNOWN_MESSAGE_TYPE'],
    ['a reply as request', wire({ t: MessageType.Opened, root: Buffer.alloc(32), nowMs: 1 }), 'MALFORMED_MESSAGE'],
    ['missing fields', packr.pack([MessageType.Open, 1]), 'MALFORMED_MESSAGE'],
    ['a newer protocol', wire({ ...open, v: 2 }), 'UNSUPPORTED_VERSION'],
    ['short salt', wire({ ...open, salt: Buffer.alloc(3) }), 'MALFORMED_MESSAGE'],
    ['negative from', wire({ ...open, from: -1 }), 'MALFORMED_MESSAGE'],
    ['bits too large', wire({ ...open, bits: 40 }), 'MALFORMED_MESSAGE'],
    ['fractional level', wire({ ...level, level: 1.5 }), 'MALFORMED_MESSAGE'],
    ['span too large', wire({ ...level, span: 9 }), 'MALFORMED_MESSAGE'],
    ['parents not an array', wire({ ...level, parents: 'x' }), 'MALFORMED_MESSAGE'],
    ['fps count != buckets', wire({ t: MessageType.Summaries, bits: 6, salt, buckets: [1, 2], fps: [Buffer.alloc(4)] }), 'MALFORMED_MESSAGE'],
    ['fps not in 4-byte units', wire({ t: MessageType.Summaries, bits: 6, salt, buckets: [1], fps: [Buffer.alloc(5)] }), 'MALFORMED_MESSAGE'],
    ['push of non-tuples', wire({ t: MessageType.Push, nodes: [], base: 0, records: [{ key: 'x' }] }), 'MALFORMED_MESSAGE'],
    ['push with bad nodes', wire({ t: MessageType.Push, nodes: [1], base: 0, records: [] }), 'MALFORMED_MESSAGE'],
    ['fetch hashes not 8-byte units', wire({ t: MessageType.Fetch, bits: 6, maxBytes: 10, buckets: [1], hashes: [Buffer.alloc(7)] }), 'MALFORMED_MESSAGE'],
  ];
  it.each(cases)('%s', (_name, body, code) => {
    expect(codeOf(() => decodeRequest(body))).toBe(code);
  });

  it('refuses a body over the size limit before decoding it', () => {
    expect(codeOf(() => decodeRequest(Buffer.alloc(100), 99))).toBe('MESSAGE_TOO_LARGE');
  });

  it('decodeReply checks bucket diffs', () => {
    const bad = wire({ t: MessageType.SummaryDiff, nodes: ['n'], base: 5, diffs: [[[0], Buffer.alloc(8), [0, 0, 1, 0]]] });
    expect(codeOf(() => decodeReply(bad))).toBe('MALFORMED_MESSAGE'); // node index 1 of 1 node
  });
});

describe('responder: never crashes, never writes on bad input', () => {
  it('answers garbage and mutated requests with a Failed reply or a valid one', async () => {
    const store = await openMemoryStore('store-r', 6);
    await store.batch(Array.from({ length: 50 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: `v${i}` })));
    const before = await dump(store);
    const responder = createRepairResponder(store);
    const valid = [
      encodeMessage(open),
      encodeMessage({ ...level, level: 3, parents: [0, 1] }),
      encodeMessage({ t: MessageType.Summaries, bits: 6, salt, buckets: [3, 4], fps: [Buffer.alloc(8), Buffer.alloc(0)] }),
      encodeMessage({ t: MessageType.Fetch, bits: 6, maxBytes: 1000, buckets: [3], hashes: [Buffer.alloc(16)] }),
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([body, at, byte]) => {
            const copy = Buffer.from(body);
            copy[at % copy.length] = byte;
            return copy;
          }),
        ),
        async (body) => {
          const reply = decodeReply(await responder.handle(body, 0));
          expect(Object.values(MessageType)).toContain(reply.t);
        },
      ),
      { numRuns: 300 },
    );
    expect(await dump(store)).toEqual(before);
    const failed = decodeReply(await handleRepairRequest(store, Buffer.from('nonsense')));
    expect(failed).toMatchObject({ t: MessageType.Failed, code: 'MALFORMED_MESSAGE' });
    const badRecord = decodeReply(await handleRepairRequest(store, encodeMessage({ t: MessageType.Push, nodes: ['n'], base: 1, records: [['', Buffer.alloc(0), 1, 0, 0, false]] })));
    expect(badRecord).toMatchObject({ t: MessageType.Failed, code: 'INVALID_RECORD' });
    await store.close();
  });
});

describe('session: a bad peer fails the session with a typed error', () => {
  async function pair(bits = 6) {
    const a = await openMemoryStore('store-a', bits);
    const b = await openMemoryStore('store-b', bits === 6 ? 6 : bits);
    await a.batch(Array.from({ length: 200 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: `a${i}` })));
    await b.batch(Array.from({ length: 200 }, (_, i) => ({ type: 'put' as const, key: `k${i * 2}`, value: `b${i}` })));
    return { a, b };
  }

  it('corrupted replies: the session ends or fails with a RepairError, and never reverts a record', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(20), async (at, byte, nth) => {
        const { a, b } = await pair();
        const before = new Map<string, StoredRecord>();
        for (const s of [a, b]) for (const r of (await s.scan({ includeTombstones: true, limit: 10_000 })).records) before.set(`${s.nodeId}/${r.key}`, r);
        let n = 0;
        const peer = createMemoryPeer(b, {
          afterReply: (body) => {
            if (n++ !== nth) return body;
            const copy = Buffer.from(body);
            copy[at % copy.length] = byte;
            return copy;
          },
        });
        try {
          await repairRange({ local: a, remote: peer, fromBucket: 0, toBucket: 64, salt, clock: virtualClock() });
        } catch (e) {
          expect(isRepairError(e), String(e)).toBe(true);
        }
        for (const s of [a, b]) {
          for (const r of (await s.scan({ includeTombstones: true, limit: 10_000 })).records) {
            const old = before.get(`${s.nodeId}/${r.key}`);
            if (old !== undefined) expect(compareVersions(r.version, old.version)).toBeGreaterThanOrEqual(0);
          }
        }
        await a.close();
        await b.close();
      }),
      { numRuns: 20 },
    );
  });

  it('a transport failure is TRANSPORT_FAILED', async () => {
    const { a } = await pair();
    const peer = { request: () => Promise.reject(new Error('connection reset')) };
    await expect(repairRange({ local: a, remote: peer, fromBucket: 0, toBucket: 64, salt, clock: virtualClock() }))
      .rejects.toMatchObject({ code: 'TRANSPORT_FAILED' });
  });

  it('stores of different bucketBits refuse to compare', async () => {
    const a = await openMemoryStore('store-a', 6);
    const b = await openMemoryStore('store-b', 7);
    await expect(repairRange({ local: a, remote: createMemoryPeer(b), fromBucket: 0, toBucket: 64, salt, clock: virtualClock() }))
      .rejects.toMatchObject({ code: 'REMOTE_ERROR', remoteCode: 'BUCKET_BITS_MISMATCH' });
  });

  it('rejects bad ranges and arguments before sending anything', async () => {
    const { a, b } = await pair();
    let sent = 0;
    const peer = createMemoryPeer(b, { beforeRequest: () => { sent++; } });
    const run = (over: Record<string, unknown>) =>
      repairRange({ local: a, remote: peer, fromBucket: 0, toBucket: 64, salt, clock: virtualClock(), ...over });
    await expect(run({ toBucket: 48 })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    await expect(run({ toBucket: 128 })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    await expect(run({ fromBucket: 64 })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    await expect(run({ salt: new Uint8Array(3) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(run({ limits: { hashBytes: 2 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(run({ rateLimitBytesPerSec: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(sent).toBe(0);
  });

  it('a record outside the buckets asked for is INVALID_RECORD', async () => {
    const { a, b } = await pair();
    const peer = createMemoryPeer(b, {
      afterReply: (body) => {
        const reply = decodeReply(body);
        if (reply.t !== MessageType.Fetched) return body;
        // k1 lives in some bucket; make sure it is one not asked for by renaming every record.
        const records = reply.records.map((r) => ['elsewhere-' + String(r[0]), ...r.slice(1)]);
        return encodeMessage({ ...reply, records });
      },
    });
    const err = await repairRange({ local: a, remote: peer, fromBucket: 0, toBucket: 64, salt, clock: virtualClock(), limits: { fetchHashesPerRequest: 1 } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepairError);
    expect((err as RepairError).code).toBe('INVALID_RECORD');
  });
});
