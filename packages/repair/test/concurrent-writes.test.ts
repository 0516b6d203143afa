import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareVersions } from '@hearsay/storage';
import type { BatchOp, Store, StoredRecord, Version } from '@hearsay/storage';
import { createMemoryPeer, repairRange } from '../src/index.ts';
import { dump, openMemoryStore, seededSalt, virtualClock } from './helpers.ts';

/**
 * Writes land on both replicas while a session runs (between its round
 * trips, where a real network would let them in). The law: nothing written
 * is lost or reverted (each side ends with that write or a newer one for the
 * key), and one further session makes the replicas identical.
 */
describe('writes during a session', () => {
  it('are never lost, and a further session converges', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), fc.integer({ min: 20, max: 200 }), async (seed, keyCount) => {
        const rng = fc.sample(fc.nat(1_000_000), { seed, numRuns: 4000 });
        let next = 0;
        const random = (n: number): number => (rng[next++ % rng.length] as number) % n;

        const a = await openMemoryStore('store-a', 6);
        const b = await openMemoryStore('store-b', 6);
        const opsA: BatchOp[] = [];
        const opsB: BatchOp[] = [];
        for (let i = 0; i < keyCount; i++) {
          const side = random(3);
          if (side !== 1) opsA.push({ type: 'put', key: `k${i}`, value: `a${i}` });
          if (side !== 0) opsB.push({ type: 'put', key: `k${i}`, value: `b${i}` });
        }
        await a.batch(opsA);
        await b.batch(opsB);
        const written: { store: 'a' | 'b'; record: StoredRecord }[] = [];
        const writeSome = async (): Promise<void> => {
          for (let w = random(4); w > 0; w--) {
            const store = random(2) === 0 ? 'a' : 'b';
            const s = store === 'a' ? a : b;
            const key = `k${random(keyCount + 20)}`; // some keys new to both
            const record = random(4) === 0 ? await s.delete(key) : await s.put(key, `w${next}`);
            written.push({ store, record });
          }
        };
        const peer = createMemoryPeer(b, { beforeRequest: writeSome });
        await repairRange({ local: a, remote: peer, fromBucket: 0, toBucket: 64, salt: seededSalt(seed), clock: virtualClock(), limits: { summaryBucketsPerBatch: 4, fetchHashesPerRequest: 3, levelParentsPerRequest: 2 } });

        const atLeast = async (s: Store, key: string, v: Version): Promise<void> => {
          const held = await s.getRecord(key);
          expect(held, `${key} lost`).toBeDefined();
          expect(compareVersions((held as StoredRecord).version, v), `${key} reverted`).toBeGreaterThanOrEqual(0);
        };
        for (const { store, record } of written) await atLeast(store === 'a' ? a : b, record.key, record.version);

        const again = await repairRange({ local: b, remote: createMemoryPeer(a), fromBucket: 0, toBucket: 64, salt: seededSalt(seed + 1), clock: virtualClock() });
        expect(again.stats.roundTrips).toBeGreaterThan(0);
        expect(await dump(a)).toEqual(await dump(b));
        for (const { record } of written) {
          await atLeast(a, record.key, record.version);
          await atLeast(b, record.key, record.version);
        }
        const third = await repairRange({ local: a, remote: createMemoryPeer(b), fromBucket: 0, toBucket: 64, salt: seededSalt(seed + 2), clock: virtualClock() });
        expect(third.inSync).toBe(true);
        await a.close();
        await b.close();
      }),
      { numRuns: 15 },
    );
  });
});
