// 100 members, 10% packet loss, one simulated hour: no live member is ever
// declared dead; also with one member stalled 2 s at random times.
import { describe, expect, it } from 'vitest';
import { SimCluster, withSeed } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

const HOUR_MS = 3600_000;

function run(seed: number, stalled: number | undefined) {
  const deaths: string[] = [];
  let suspicionsOfStalled = 0;
  let suspicions = 0;
  const c = new SimCluster({
    seed,
    n: 100,
    link: { lossRate: 0.1 },
    onEvent: (i, e) => {
      if (e.type === 'dead') deaths.push(`${e.member.id} declared dead by n${i} at ${e.atMs.toFixed(0)} ms`);
      if (e.type === 'suspect') {
        suspicions++;
        if (stalled !== undefined && e.member.id === c.ids[stalled]) suspicionsOfStalled++;
      }
    },
  });
  let stalls = 0;
  if (stalled !== undefined) {
    // An event-loop pause of 2 s, every 2–62 s (about 120 per hour).
    const next = (at: number): void =>
      c.scheduler.schedule(at, (now) => {
        c.stall(stalled, 2000);
        stalls++;
        next(now + 2000 + c.random.int(60_000));
      });
    next(5000 + c.random.int(30_000));
  }
  c.start(1000);
  c.runFor(HOUR_MS);
  return { c, deaths, suspicions, suspicionsOfStalled, stalls };
}

describe('100 members, 10% loss, one simulated hour', () => {
  it('no live member is ever declared dead', () => {
    const seed = testSeed(3001);
    withSeed('lossy hour', seed, () => {
      const { c, deaths, suspicions } = run(seed, undefined);
      console.log(`[seed ${seed}] 1 h at 10% loss: ${suspicions} suspect events (all refuted), ${deaths.length} deaths, ${c.net.stats.sent} datagrams`);
      expect(deaths).toEqual([]);
      for (const i of c.liveIndices()) expect(c.node(i).numLive).toBe(100);
    });
  }, 120_000);

  it('a member stalled 2 s at random times is suspected at most, never declared dead', () => {
    const seed = testSeed(3002);
    withSeed('lossy hour with stalls', seed, () => {
      const stalled = 42;
      const { deaths, suspicionsOfStalled, stalls } = run(seed, stalled);
      console.log(`[seed ${seed}] 1 h at 10% loss, ${stalls} stalls of n${stalled}: suspected ${suspicionsOfStalled} times (member-views), never dead`);
      expect(stalls).toBeGreaterThan(50);
      expect(suspicionsOfStalled).toBeGreaterThan(0);
      expect(deaths).toEqual([]);
    });
  }, 120_000);
});
