// Partitions heal into one view; restarted members are re-admitted quickly;
// clusters form by joining through seeds; one seed gives one run; phi mode works.
import { describe, expect, it } from 'vitest';
import { SimCluster, withSeed } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

describe('membership in simulation', () => {
  it.each([4001, 4002])('a 50/50 partition for 60 s, then healed: one view everywhere within 30 s (seed %i)', (fallback) => {
    const seed = testSeed(fallback);
    withSeed('partition', seed, () => {
      const c = new SimCluster({ seed, n: 100 });
      c.start(1000);
      c.runFor(5000);
      const order = c.random.shuffle([...Array(100).keys()]);
      const a = order.slice(0, 50);
      const b = order.slice(50);
      c.partition([a, b]);
      c.runFor(60_000);
      // The sides have given up on each other (so re-merge is really tested).
      let deadAcross = 0;
      for (const i of a) for (const j of b) if (c.statusAt(i, j) === 'dead') deadAcross++;
      expect(deadAcross).toBeGreaterThan(2400);
      c.heal();
      const healedAt = c.now;
      const at = c.runUntil(() => c.converged(), 30_000, 100);
      console.log(`[seed ${seed}] partition healed: one view at all 100 members after ${at === undefined ? 'never' : at - healedAt} ms`);
      expect(at).toBeDefined();
      expect(at! - healedAt).toBeLessThanOrEqual(30_000);
    });
  }, 60_000);

  it.each([
    ['after it was declared dead', 30_000],
    ['before anyone noticed the crash', 300],
  ] as const)('a member restarted with the same id (%s) is alive again everywhere within 2 s', (_label, downMs) => {
    const seed = testSeed(5001 + downMs);
    withSeed('restart', seed, () => {
      const c = new SimCluster({ seed, n: 100 });
      c.start(1000);
      c.runFor(5000);
      const victim = 10 + c.random.int(90); // not one of the seeds (0..2)
      c.crash(victim);
      c.runFor(downMs);
      if (downMs >= 30_000) expect(c.allSee(victim, ['dead'])).toBe(true);
      const restartedAt = c.now;
      c.restart(victim);
      const at = c.runUntil(() => c.converged(), 2000, 10);
      console.log(`[seed ${seed}] restart of n${victim} after ${downMs} ms down: alive (new generation) everywhere after ${at === undefined ? 'never' : (at - restartedAt).toFixed(0)} ms`);
      expect(at).toBeDefined();
      expect(c.node(victim).generation).toBe(2);
    });
  }, 60_000);

  it('100 members join through 3 seeds and agree on the view', () => {
    const seed = testSeed(6001);
    withSeed('join', seed, () => {
      const c = new SimCluster({ seed, n: 100, bootstrap: 'join', seedCount: 3 });
      c.start(2000);
      const at = c.runUntil(() => c.converged(), 60_000, 100);
      console.log(`[seed ${seed}] 100 members joined through 3 seeds: one view after ${at} ms`);
      expect(at).toBeDefined();
    });
  }, 60_000);

  it('100 members join through 3 seeds while each publishes state: every member ends with every other\'s latest state', () => {
    // State rumors can reach a member before, after or without the rumor that it exists. One who learned of a member
    // late and then saw only its newer changes must still end up with the older keys (here `http`) through push-pull.
    const seed = testSeed(6051);
    withSeed('state', seed, () => {
      const c = new SimCluster({ seed, n: 100, bootstrap: 'join', seedCount: 3, link: { lossRate: 0.05 } });
      for (let i = 0; i < c.n; i++) c.node(i).setLocalState('http', `http://${c.ids[i]}`);
      c.start(10_000);
      for (let round = 1; round <= 12; round++) {
        c.runFor(5000);
        for (const i of c.liveIndices()) c.node(i).setLocalState('keys', String(round));
      }
      const complete = (): boolean => {
        for (let i = 0; i < c.n; i++) {
          for (let j = 0; j < c.n; j++) {
            if (i === j) continue;
            if (c.node(i).stateOf(c.ids[j]!, 'http') !== `http://${c.ids[j]}` || c.node(i).stateOf(c.ids[j]!, 'keys') !== '12') return false;
          }
        }
        return true;
      };
      const lastChangeAt = c.now;
      const at = c.runUntil(complete, 60_000, 500);
      console.log(`[seed ${seed}] every member holds every other's latest state ${at === undefined ? 'never' : `${(at - lastChangeAt).toFixed(0)} ms after the last change`}`);
      expect(at).toBeDefined();
    });
  }, 60_000);

  it('graceful leave is seen as left everywhere, never as dead', () => {
    const seed = testSeed(6101);
    withSeed('leave', seed, () => {
      let deaths = 0;
      const c = new SimCluster({ seed, n: 50, onEvent: (_i, e) => void (e.type === 'dead' && deaths++) });
      c.start(1000);
      c.runFor(3000);
      c.node(7).leave(c.now);
      c.flush(7);
      c.runFor(2000);
      c.crash(7); // the process exits after announcing
      const at = c.runUntil(() => c.allSee(7, ['left']), 10_000, 50);
      expect(at).toBeDefined();
      c.runFor(60_000);
      expect(c.allSee(7, ['left'])).toBe(true);
      expect(deaths).toBe(0);
    });
  }, 60_000);

  it('one seed gives one run, exactly', () => {
    const seed = testSeed(7001);
    const trace = (s: number): string => {
      const lines: string[] = [];
      const c = new SimCluster({ seed: s, n: 60, link: { lossRate: 0.05 }, onEvent: (i, e) => lines.push(`${e.atMs}:${i}:${e.type}:${e.member.id}:${e.member.incarnation}`) });
      c.start(1000);
      c.runFor(10_000);
      c.crash(5);
      c.stall(6, 3000);
      c.node(9).setLocalState('k', 'v');
      c.flush(9);
      c.runFor(30_000);
      return `${lines.join('\n')}\n${JSON.stringify(c.net.stats)}\n${JSON.stringify(c.node(0).stats)}`;
    };
    const first = trace(seed);
    expect(first.length).toBeGreaterThan(100);
    expect(trace(seed)).toBe(first);
    expect(trace(seed + 1)).not.toBe(first);
  }, 60_000);

  it('phi-accrual detector: no false deaths at 1% loss, a crash is detected everywhere', () => {
    const seed = testSeed(8001);
    withSeed('phi', seed, () => {
      let falseDeaths = 0;
      const c = new SimCluster({
        seed,
        n: 30,
        tuning: { detector: 'phi' },
        link: { lossRate: 0.01 },
        onEvent: (_i, e) => void (e.type === 'dead' && e.member.id !== 'n3' && falseDeaths++),
      });
      c.start(1000);
      c.runFor(120_000);
      expect(c.node(0).stats.probes).toBe(0);
      c.crash(3);
      const crashAt = c.now;
      const at = c.runUntil(() => c.allSee(3, ['dead']), 120_000, 100);
      console.log(`[seed ${seed}] phi detector, 30 members: crash detected everywhere after ${at === undefined ? 'never' : at - crashAt} ms`);
      expect(at).toBeDefined();
      expect(falseDeaths).toBe(0);
    });
  }, 60_000);
});
