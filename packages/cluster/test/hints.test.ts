import { afterEach, describe, expect, it } from 'vitest';
import { MemoryLevel } from 'memory-level';
import type { StoredRecord } from '@hearsay/storage';
import { HintStore, hintsSublevel } from '../src/hint-store.ts';
import { TestCluster } from './harness.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const rec = (key: string, ms: number, value = key): StoredRecord => ({
  key,
  value: enc(value),
  version: { ms, counter: 0, node: 'n1' },
  tombstone: false,
});

describe('HintStore', () => {
  it('keeps one hint per (target, key), the newest version, within a bound per target', async () => {
    const db = new MemoryLevel<string, Uint8Array>();
    const hints = new HintStore(hintsSublevel(db), { maxHintsPerTarget: 3 });
    await hints.open();
    expect(await hints.add('t/1', [rec('a', 10), rec('b', 10)], 1000)).toBe(2);
    expect(await hints.add('t/1', [rec('a', 5, 'older')], 1001)).toBe(1); // kept: a newer one is there
    expect(await hints.add('t/1', [rec('a', 20, 'newer'), rec('c', 1), rec('d', 1)], 1002)).toBe(2); // d over the bound
    expect(await hints.add('other', [rec('a', 1)], 1003)).toBe(1);
    expect(hints.count('t/1')).toBe(3);
    expect(hints.stats().refused).toBe(1);
    const peeked = await hints.peek('t/1', 10);
    expect(peeked.map((h) => [h.record.key, new TextDecoder().decode(h.record.value)])).toEqual([
      ['a', 'newer'],
      ['b', 'b'],
      ['c', 'c'],
    ]);
    expect(hints.targets().sort()).toEqual(['other', 't/1']);

    // Durable: a fresh store over the same db sees the same hints.
    const reopened = new HintStore(hintsSublevel(db));
    await reopened.open();
    expect(reopened.count('t/1')).toBe(3);
    expect(reopened.count('other')).toBe(1);

    // A hint replaced by a newer version after it was peeked is not removed by the delivery.
    await hints.add('t/1', [rec('b', 30, 'b2')], 1004);
    await hints.markDelivered(peeked);
    expect((await hints.peek('t/1', 10)).map((h) => h.record.key)).toEqual(['b']);

    expect(await hints.expire(1004)).toBe(1); // 'other' stored at 1003
    expect(hints.count('other')).toBe(0);
    expect(hints.count('t/1')).toBe(1);
    await db.close();
  });
});

describe('hinted handoff', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('hands writes for a down replica to a stand-in, and delivers them when it is back', async () => {
    const c = (cluster = await TestCluster.create(5, { handoffIntervalMs: 1000 }));
    const svc = c.get('n1').node.service;
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    // Pick a victim that is a replica of some keys but is not the coordinator.
    await c.crash('n2');
    c.setState('n2', 'dead');
    for (const k of keys) await c.run(svc.put(k, enc(k), { consistency: 'quorum' }));
    const mine = keys.filter((k) => svc.partitionMap.preferenceList(svc.partitionOf(k)).includes('n2'));
    expect(mine.length).toBeGreaterThan(0);
    let hinted = 0;
    for (const t of c.nodes.values()) if (t.up) hinted += t.node.hints.count('n2');
    expect(hinted).toBe(mine.length);
    // Hints sit on stand-ins outside the preference list.
    for (const k of mine) {
      const p = svc.partitionOf(k);
      const standIn = svc.partitionMap.ranking(p).slice(3).find((id) => id !== 'n2');
      expect(standIn).toBeDefined();
    }

    await c.restart('n2');
    c.setState('n2', 'alive');
    await c.clock.advance(1500);
    for (const k of mine) expect(new TextDecoder().decode((await c.get('n2').store.getRecord(k))?.value)).toBe(k);
    for (const t of c.nodes.values()) expect(t.node.hints.count('n2')).toBe(0);
  });

  it('keeps a local hint when a write to a reachable replica fails, and drops hints past the window', async () => {
    const c = (cluster = await TestCluster.create(3, { handoffIntervalMs: 1000, hintWindowMs: 10_000, tombstoneGraceMs: 10_000 }));
    c.get('n3').up = false; // membership still says alive
    await c.run(c.get('n1').node.service.put('k', enc('v'), { consistency: 'quorum' }));
    await c.run(c.get('n1').node.service.settled());
    expect(c.get('n1').node.hints.count('n3')).toBe(1);
    await c.clock.advance(11_000);
    expect(c.get('n1').node.hints.count('n3')).toBe(0);
    expect(c.get('n1').node.hints.stats().expired).toBe(1);
  });

  it('counts stand-ins toward the consistency level only when configured to', async () => {
    const strict = (cluster = await TestCluster.create(4));
    await strict.crash('n2');
    await strict.crash('n3');
    strict.setState('n2', 'dead');
    strict.setState('n3', 'dead');
    const svc = strict.get('n1').node.service;
    const key = Array.from({ length: 200 }, (_, i) => `k${i}`).find((k) => {
      const prefs = svc.partitionMap.preferenceList(svc.partitionOf(k));
      return prefs.includes('n1') && prefs.includes('n2') && prefs.includes('n3');
    })!;
    await expect(strict.run(svc.put(key, enc('v'), { consistency: 'quorum' }))).rejects.toMatchObject({ code: 'INSUFFICIENT_REPLICAS' });
    await strict.stop();

    const sloppy = (cluster = await TestCluster.create(4, { hintsCountTowardConsistency: true }));
    await sloppy.crash('n2');
    await sloppy.crash('n3');
    sloppy.setState('n2', 'dead');
    sloppy.setState('n3', 'dead');
    await sloppy.run(sloppy.get('n1').node.service.put(key, enc('v'), { consistency: 'quorum' }));
    expect(sloppy.get('n4').node.hints.count('n2') + sloppy.get('n4').node.hints.count('n3')).toBe(1);
  });
});
