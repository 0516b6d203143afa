/**
 * The laws of the store, checked with fast-check. The seed is printed at the
 * start; replay a run with LWW_SEED=<seed> (fast-check also prints the path
 * of a failure: `fc.assert(..., { seed, path })`).
 *
 * 1. Any order (and grouping) of applying any multiset of records gives
 *    identical stores and identical bucket digests (commutative, associative,
 *    idempotent merge), equal to the per-key `newest` of the LWW rule
 *    (merge.ts): the store decides as every other caller of the rule.
 * 2. After any sequence of local writes, applies and purges, every bucket's
 *    digest equals the digest recomputed from scratch from the data.
 * bucketBits is 2 so buckets hold many keys each.
 */
import fc from 'fast-check';
import { MemoryLevel } from 'memory-level';
import { describe, expect, it } from 'vitest';
import { newer, openStore } from '../src/index.ts';
import type { Store, StoredRecord } from '../src/index.ts';
import { ManualClock } from './conformance.ts';
import { allRecords, checkIntegrity } from './integrity.ts';

const seed = Number(process.env['LWW_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
console.log(`lww.property.test.ts: fast-check seed ${seed} (replay with LWW_SEED=${seed})`);

const BITS = 2;
const keyArb = fc.oneof(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'a/1', 'é'), fc.string({ minLength: 1, maxLength: 4 }));
const versionArb = fc.record({
  ms: fc.integer({ min: 0, max: 20 }),
  counter: fc.integer({ min: 0, max: 3 }),
  node: fc.constantFrom('n1', 'n2', 'n3'),
});
const recordArb: fc.Arbitrary<StoredRecord> = fc.oneof(
  fc.record({
    key: keyArb,
    value: fc.uint8Array({ maxLength: 4 }),
    version: versionArb,
    tombstone: fc.constant(false),
    contentType: fc.constantFrom('text/plain', 'application/json'),
  }, { requiredKeys: ['key', 'value', 'version', 'tombstone'] }),
  fc.record({ key: keyArb, value: fc.constant(new Uint8Array()), version: versionArb, tombstone: fc.constant(true) }),
);

/** A multiset: records, some repeated. */
const multisetArb = fc.array(recordArb, { minLength: 1, maxLength: 25 }).chain((rs) =>
  fc.array(fc.nat({ max: rs.length - 1 }), { maxLength: 8 }).map((dups) => [...rs, ...dups.map((i) => rs[i] as StoredRecord)]));

function shuffled<T>(xs: readonly T[], order: readonly number[]): T[] {
  const keyed = xs.map((x, i) => ({ x, k: order[i % Math.max(order.length, 1)] ?? 0, i }));
  keyed.sort((a, b) => a.k - b.k || a.i - b.i);
  return keyed.map((e) => e.x);
}

async function freshStore(): Promise<{ store: Store; db: MemoryLevel }> {
  const db = new MemoryLevel();
  return { store: await openStore({ db, bucketBits: BITS, cacheSize: 0 }), db };
}

async function snapshot(store: Store): Promise<unknown> {
  const records = (await allRecords(store)).map((r) => ({ ...r, value: Buffer.from(r.value).toString('hex') }));
  const digests = (await store.bucketDigests(0, 2 ** BITS)).map((d) => Buffer.from(d).toString('hex'));
  return { records, digests };
}

describe('LWW merge laws', () => {
  it('any order and grouping of any multiset gives identical stores and digests', async () => {
    await fc.assert(
      fc.asyncProperty(multisetArb, fc.array(fc.nat()), fc.array(fc.nat()), fc.array(fc.integer({ min: 1, max: 5 })),
        async (records, order1, order2, chunks) => {
          const a = await freshStore();
          const b = await freshStore();
          const c = await freshStore();
          try {
            // a: one at a time in the given order.
            for (const r of records) await a.store.apply(r);
            // b: another order, in applyMany chunks of random sizes.
            const rb = shuffled(records, order1);
            for (let i = 0, j = 0; i < rb.length; j++) {
              const n = chunks[j % Math.max(chunks.length, 1)] ?? 3;
              await b.store.applyMany(rb.slice(i, i + n));
              i += n;
            }
            // c: a third order, all at once concurrently, then everything again (idempotence).
            const rc = shuffled(records, order2);
            await Promise.all(rc.map((r) => c.store.apply(r)));
            expect(await c.store.applyMany(rc)).toEqual(rc.map(() => false));

            const sa = await snapshot(a.store);
            expect(await snapshot(b.store)).toEqual(sa);
            expect(await snapshot(c.store)).toEqual(sa);
            // ... and equal to the per-key winner of the LWW rule, contents included.
            const best = new Map<string, StoredRecord>();
            for (const r of records) best.set(r.key, newer(best.get(r.key), r));
            const model = [...best.values()].sort((x, y) => Buffer.compare(Buffer.from(x.key), Buffer.from(y.key)));
            const contents = (r: StoredRecord): unknown => [r.key, r.version, r.tombstone, Buffer.from(r.value).toString('hex'), r.contentType];
            expect((await allRecords(a.store)).map(contents)).toEqual(model.map(contents));
            expect(await checkIntegrity(a.store)).toEqual([]);
          } finally {
            for (const s of [a, b, c]) {
              await s.store.close();
              await s.db.close();
            }
          }
        }),
      { seed, numRuns: 60 },
    );
  });

  type Op =
    | { t: 'put'; key: string; value: Uint8Array }
    | { t: 'del'; key: string }
    | { t: 'apply'; record: StoredRecord }
    | { t: 'batch'; keys: string[] }
    | { t: 'tick'; ms: number }
    | { t: 'purge'; back: number; from: number };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ t: fc.constant('put' as const), key: keyArb, value: fc.uint8Array({ maxLength: 4 }) }),
    fc.record({ t: fc.constant('del' as const), key: keyArb }),
    fc.record({ t: fc.constant('apply' as const), record: recordArb }),
    fc.record({ t: fc.constant('batch' as const), keys: fc.array(keyArb, { minLength: 1, maxLength: 4 }) }),
    fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: -5, max: 10 }) }),
    fc.record({ t: fc.constant('purge' as const), back: fc.integer({ min: 0, max: 20 }), from: fc.integer({ min: 0, max: 2 ** BITS }) }),
  );

  it('every bucket digest equals the digest recomputed from the data', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.boolean(), async (ops, concurrent) => {
        const clock = new ManualClock(10);
        const db = new MemoryLevel();
        const store = await openStore({ db, bucketBits: BITS, clock });
        try {
          const run = async (op: Op): Promise<unknown> => {
            switch (op.t) {
              case 'put': return store.put(op.key, op.value);
              case 'del': return store.delete(op.key);
              case 'apply': return store.apply(op.record);
              case 'batch': return store.batch(op.keys.map((key, i) => (i % 2 === 0 ? { type: 'put', key, value: key } : { type: 'delete', key })));
              case 'tick': clock.ms += op.ms; return undefined;
              case 'purge': return store.purgeTombstones({ beforeMs: clock.ms - op.back, fromBucket: op.from });
              default: return op satisfies never;
            }
          };
          if (concurrent) await Promise.all(ops.map(run));
          else for (const op of ops) await run(op);
          expect(await checkIntegrity(store)).toEqual([]);
        } finally {
          await store.close();
          await db.close();
        }
      }),
      { seed, numRuns: 80 },
    );
  });
});
