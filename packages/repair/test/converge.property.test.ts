import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketOf, compareRecords, hashKey } from '@hearsay/storage';
import type { Store, StoredRecord } from '@hearsay/storage';
import { createMemoryPeer, repairRange } from '../src/index.ts';
import type { RepairLimits, RepairResult } from '../src/index.ts';
import { dump, openMemoryStore, plain, seededSalt, virtualClock } from './helpers.ts';

/**
 * The law: two replicas diverged in any way are identical after one session
 * (same records, same bucket digests, so the same root), nothing either held
 * is lost, and a second session finds nothing to do.
 *
 * fast-check prints the seed and path of a failing run; replay it with
 * REPAIR_SEED=<seed> (and REPAIR_PATH=<path>).
 */

const BASE_MS = 1_700_000_000_000;
const NODES = ['n1', 'n2', 'n3'] as const;

/** How one key differs between the replicas A and B. */
type Divergence =
  | 'same' | 'onlyA' | 'onlyB' | 'aNewer' | 'bNewer'
  | 'tombstoneANewer' | 'tombstoneBNewer' | 'valueOverOlderTombstoneA' | 'bothTombstones' | 'tieTombstoneVsValue';

const DIVERGENCES: readonly Divergence[] = [
  'same', 'onlyA', 'onlyB', 'aNewer', 'bNewer',
  'tombstoneANewer', 'tombstoneBNewer', 'valueOverOlderTombstoneA', 'bothTombstones', 'tieTombstoneVsValue',
];

interface KeySpec {
  readonly divergence: Divergence;
  readonly ms: number;
  readonly counter: number;
  readonly node: number;
  readonly valueBytes: number;
}

const keySpec = fc.record({
  divergence: fc.constantFrom(...DIVERGENCES),
  ms: fc.integer({ min: 0, max: 10_000_000 }),
  counter: fc.integer({ min: 0, max: 3 }),
  node: fc.integer({ min: 0, max: 2 }),
  valueBytes: fc.integer({ min: 0, max: 300 }),
});

const limitsArb: fc.Arbitrary<Partial<RepairLimits>> = fc.oneof(
  fc.constant({}),
  fc.record({
    hashBytes: fc.integer({ min: 4, max: 32 }),
    levelParentsPerRequest: fc.integer({ min: 1, max: 8 }),
    summaryEntriesPerBatch: fc.integer({ min: 1, max: 40 }),
    summaryBucketsPerBatch: fc.integer({ min: 1, max: 16 }),
    chunkBytes: fc.integer({ min: 1024, max: 4096 }),
    fetchHashesPerRequest: fc.integer({ min: 1, max: 8 }),
  }),
);

function record(key: string, spec: KeySpec, msDelta: number, tombstone: boolean, node = NODES[spec.node] as string): StoredRecord {
  const value = tombstone ? new Uint8Array(0) : Buffer.alloc(spec.valueBytes, `${key}@${msDelta}`);
  return { key, value, version: { ms: BASE_MS + spec.ms + msDelta, counter: spec.counter, node }, tombstone };
}

/** The records A and B start with for one key. */
function diverge(key: string, spec: KeySpec): { a?: StoredRecord; b?: StoredRecord } {
  switch (spec.divergence) {
    case 'same': { const r = record(key, spec, 0, false); return { a: r, b: r }; }
    case 'onlyA': return { a: record(key, spec, 0, false) };
    case 'onlyB': return { b: record(key, spec, 0, false) };
    case 'aNewer': return { a: record(key, spec, 5, false), b: record(key, spec, 0, false) };
    case 'bNewer': return { a: record(key, spec, 0, false), b: record(key, spec, 0, false, 'n9') };
    case 'tombstoneANewer': return { a: record(key, spec, 7, true), b: record(key, spec, 0, false) };
    case 'tombstoneBNewer': return { a: record(key, spec, 0, false), b: record(key, spec, 1, true) };
    case 'valueOverOlderTombstoneA': return { a: record(key, spec, 0, true), b: record(key, spec, 3, false) };
    case 'bothTombstones': { const r = record(key, spec, 0, true); return { a: r, b: r }; }
    case 'tieTombstoneVsValue': return { a: record(key, spec, 0, true), b: record(key, spec, 0, false) };
    default: { const never: never = spec.divergence; throw new Error(String(never)); }
  }
}

async function setUp(bits: number, specs: readonly KeySpec[]): Promise<{ a: Store; b: Store; expected: Map<string, StoredRecord>; had: Map<string, { a?: StoredRecord; b?: StoredRecord }> }> {
  const a = await openMemoryStore('store-a', bits);
  const b = await openMemoryStore('store-b', bits);
  const forA: StoredRecord[] = [];
  const forB: StoredRecord[] = [];
  const expected = new Map<string, StoredRecord>();
  const had = new Map<string, { a?: StoredRecord; b?: StoredRecord }>();
  specs.forEach((spec, i) => {
    const key = `key/${i}/${spec.divergence}`;
    const pair = diverge(key, spec);
    had.set(key, pair);
    if (pair.a !== undefined) forA.push(pair.a);
    if (pair.b !== undefined) forB.push(pair.b);
    const winner = [pair.a, pair.b].filter((r): r is StoredRecord => r !== undefined).sort(compareRecords).at(-1);
    if (winner !== undefined) expected.set(key, winner);
  });
  await a.applyMany(forA);
  await b.applyMany(forB);
  return { a, b, expected, had };
}

function seedParams(): { seed?: number; path?: string } {
  const seed = process.env['REPAIR_SEED'];
  const path = process.env['REPAIR_PATH'];
  return { ...(seed === undefined ? {} : { seed: Number(seed) }), ...(path === undefined ? {} : { path }) };
}

async function session(local: Store, remote: Store, from: number, to: number, salt: number, limits: Partial<RepairLimits>): Promise<RepairResult> {
  return repairRange({ local, remote: createMemoryPeer(remote), fromBucket: from, toBucket: to, salt: seededSalt(salt), clock: virtualClock(), limits });
}

describe('one session converges two diverged replicas', () => {
  it('whole store: identical data, digests and root; the second session is a no-op', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1, 3, 6, 8),
        fc.array(keySpec, { minLength: 0, maxLength: 160 }),
        fc.boolean(),
        limitsArb,
        fc.integer(),
        async (bits, specs, aInitiates, limits, salt) => {
          const { a, b, expected } = await setUp(bits, specs);
          const [local, remote] = aInitiates ? [a, b] : [b, a];
          const first = await session(local, remote, 0, 2 ** bits, salt, limits);

          const wanted = [...expected.values()].sort((x, y) => (x.key < y.key ? -1 : 1)).map(plain);
          expect(await dump(a)).toEqual(wanted);
          expect(await dump(b)).toEqual(wanted);
          expect(await a.bucketDigests(0, 2 ** bits)).toEqual(await b.bucketDigests(0, 2 ** bits));
          const divergent = specs.some((s) => s.divergence !== 'same' && s.divergence !== 'bothTombstones');
          expect(first.inSync).toBe(!divergent);

          const second = await session(local, remote, 0, 2 ** bits, salt + 1, limits);
          expect(second.inSync).toBe(true);
          expect(second.stats.roundTrips).toBe(1);
          expect(second.stats.keysSent + second.stats.keysReceived).toBe(0);
          await a.close();
          await b.close();
        },
      ),
      { numRuns: 40, ...seedParams() },
    );
  });

  it('one partition range: buckets inside converge, buckets outside are untouched', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(keySpec, { minLength: 1, maxLength: 160 }),
        fc.integer({ min: 0, max: 3 }),
        fc.nat(),
        limitsArb,
        fc.integer(),
        async (specs, lengthBits, partitionSeed, limits, salt) => {
          const bits = 6;
          const length = 2 ** lengthBits;
          const from = (partitionSeed % (2 ** bits / length)) * length;
          const to = from + length;
          const { a, b, expected, had } = await setUp(bits, specs);
          await session(a, b, from, to, salt, limits);
          for (const [key, pair] of had) {
            const bucket = bucketOf(hashKey(key), bits);
            const [ra, rb] = [await a.getRecord(key), await b.getRecord(key)];
            if (bucket >= from && bucket < to) {
              const winner = plain(expected.get(key) as StoredRecord);
              expect(ra && plain(ra)).toEqual(winner);
              expect(rb && plain(rb)).toEqual(winner);
            } else {
              expect(ra && plain(ra)).toEqual(pair.a && plain(pair.a));
              expect(rb && plain(rb)).toEqual(pair.b && plain(pair.b));
            }
          }
          expect(await a.bucketDigests(from, to)).toEqual(await b.bucketDigests(from, to));
          expect((await session(b, a, from, to, salt + 1, limits)).inSync).toBe(true);
          await a.close();
          await b.close();
        },
      ),
      { numRuns: 30, ...seedParams() },
    );
  });
});
