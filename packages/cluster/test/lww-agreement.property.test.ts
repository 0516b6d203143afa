/**
 * Every place the cluster picks between records of one key decides as the
 * storage package's LWW rule does (`newest`, `compareRecords`, `supersedes`
 * in @hearsay/storage merge.ts), on replicas that diverged in any way —
 * equal versions with different contents included, which only the rule's
 * tie-break orders:
 *
 *  - a coordinator's read answers the winner among the replicas' records;
 *  - its merged listing lists each key's winner (live ones only), page by
 *    page through its cursors;
 *  - its read repair leaves every replica holding the winner;
 *  - the hint store keeps the winner of the records hinted for a key, and a
 *    delivery removes a hint only if no winning record replaced it.
 *
 * fast-check seed: printed at the start; replay with LWW_SEED=<seed>.
 */
import fc from 'fast-check';
import { MemoryLevel } from 'memory-level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareRecords, isLive, newest, supersedes, type StoredRecord } from '@hearsay/storage';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { TestCluster } from './harness.ts';

const seed = Number(process.env['LWW_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
console.log(`lww-agreement (cluster): fast-check seed ${seed} (replay with LWW_SEED=${seed})`);

const NODES = ['n1', 'n2', 'n3'] as const;

/** A record of `key` over small domains, so equal versions with different contents are common. */
interface Spec {
  readonly ms: number;
  readonly counter: number;
  readonly node: string;
  readonly tombstone: boolean;
  readonly value: number;
  readonly contentType: string | undefined;
  /** Expiry relative to now: undefined (none), past or future. */
  readonly expiry: 'none' | 'past' | 'future';
}

const specArb: fc.Arbitrary<Spec> = fc.record({
  ms: fc.integer({ min: 0, max: 2 }),
  counter: fc.integer({ min: 0, max: 1 }),
  node: fc.constantFrom('n1', 'n2'),
  tombstone: fc.boolean(),
  value: fc.integer({ min: 0, max: 2 }),
  contentType: fc.constantFrom(undefined, 'text/plain', 'application/json'),
  expiry: fc.constantFrom('none' as const, 'past' as const, 'future' as const),
});

function recordOf(key: string, spec: Spec, nowMs: number): StoredRecord {
  const version = { ms: nowMs - 10_000 + spec.ms, counter: spec.counter, node: spec.node };
  if (spec.tombstone) return { key, value: new Uint8Array(), version, tombstone: true };
  const r: { -readonly [K in keyof StoredRecord]: StoredRecord[K] } = { key, value: Buffer.from(`v${spec.value}`), version, tombstone: false };
  if (spec.contentType !== undefined) r.contentType = spec.contentType;
  if (spec.expiry !== 'none') r.expiresAtMs = spec.expiry === 'past' ? nowMs - 5000 : nowMs + 3_600_000;
  return r;
}

/** Up to four keys; each replica may hold any record of each, or none. */
const divergenceArb = fc.array(fc.tuple(fc.option(specArb, { nil: undefined }), fc.option(specArb, { nil: undefined }), fc.option(specArb, { nil: undefined })), {
  minLength: 1,
  maxLength: 4,
});

/** Records compared by content, as the rule sees them. */
const text = (r: StoredRecord | undefined): string =>
  (r === undefined
    ? '-'
    : `${r.key} ${r.version.ms}.${r.version.counter}.${r.version.node} ${r.tombstone ? '†' : Buffer.from(r.value).toString()} ${r.contentType ?? ''} ${r.expiresAtMs ?? ''}`);

describe('the cluster decides by the storage LWW rule', () => {
  let cluster: TestCluster;
  let run = 0;

  beforeAll(async () => {
    cluster = await TestCluster.create(3, { replicationFactor: 3 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('reads, the merged listing and read repair agree with newest() on diverged replicas', async () => {
    await fc.assert(
      fc.asyncProperty(divergenceArb, fc.integer({ min: 1, max: 3 }), fc.constantFrom(...NODES), async (keys, pageSize, via) => {
        const c = cluster;
        const nowMs = c.clock.now();
        const prefix = `run${run++}/`;
        const held = new Map<string, (StoredRecord | undefined)[]>();
        for (let i = 0; i < keys.length; i++) {
          const key = `${prefix}k${i}`;
          const specs = keys[i] as (Spec | undefined)[];
          const records = specs.map((s) => (s === undefined ? undefined : recordOf(key, s, nowMs)));
          held.set(key, records);
          for (let n = 0; n < NODES.length; n++) {
            const r = records[n];
            if (r !== undefined) await c.get(NODES[n] as string).store.apply(r);
          }
        }
        const winner = (key: string): StoredRecord | undefined => newest(held.get(key) ?? []);
        const svc = c.get(via).node.service;

        // The merged listing, page by page through its cursors: each key's winner, when live.
        const listed: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; ; pages++) {
          expect(pages).toBeLessThan(20);
          const page = await c.run(svc.list({ prefix, limit: pageSize, consistency: 'all', ...(cursor === undefined ? {} : { cursor }) }));
          for (const item of page.items) listed.push(`${item.key} ${item.version.ms}.${item.version.counter}.${item.version.node} ${item.size}`);
          if (page.next === null) break;
          cursor = page.next;
        }
        const expectedListing = [...held.keys()]
          .map((key) => winner(key))
          .filter((r): r is StoredRecord => isLive(r, nowMs))
          .map((r) => `${r.key} ${r.version.ms}.${r.version.counter}.${r.version.node} ${r.value.byteLength}`);
        expect(listed).toEqual(expectedListing);

        // A read at `all` sees every replica: it answers the winner (absent when dead).
        for (const key of held.keys()) {
          const got = await c.run(svc.get(key, { consistency: 'all' }));
          const best = winner(key);
          expect(text(got), key).toBe(text(isLive(best, nowMs) ? best : undefined));
        }

        // Read repair then leaves the winner on every replica.
        await c.run(svc.settled());
        for (const key of held.keys()) {
          for (const id of NODES) {
            expect(text(await c.get(id).store.getRecord(key)), `${key} on ${id}`).toBe(text(winner(key)));
          }
        }
      }),
      { seed, numRuns: 40 },
    );
  });

  it('the hint store keeps the winner of what was hinted for a key, and a delivery never removes a winning replacement', async () => {
    const db = new MemoryLevel<string, Uint8Array>();
    const hints = new HintStore(hintsSublevel(db));
    await hints.open();
    const nowMs = 1_700_000_000_000;
    await fc.assert(
      fc.asyncProperty(fc.array(specArb, { minLength: 1, maxLength: 6 }), specArb, async (specs, late) => {
        const target = `t${run++}`;
        const records = specs.map((s) => recordOf('k', s, nowMs));
        for (const r of records) await hints.add(target, [r], nowMs);
        const [kept] = await hints.peek(target, 10);
        expect(text(kept?.record)).toBe(text(newest(records)));

        // Delivered while a later record was hinted: the hint stays exactly when that record won.
        const replacement = recordOf('k', late, nowMs);
        await hints.add(target, [replacement], nowMs);
        await hints.markDelivered([kept!]);
        const [left] = await hints.peek(target, 10);
        expect(text(left?.record)).toBe(text(supersedes(replacement, kept!.record) ? replacement : undefined));
        if (left !== undefined) expect(compareRecords(left.record, kept!.record)).toBe(1);
      }),
      { seed, numRuns: 200 },
    );
    await db.close();
  });
});
