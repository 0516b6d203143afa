// A probe of a member's old life must not accuse its new life (issue 15): a
// member crashes, is suspected, and restarts while probes of the crashed
// process are still open. Before the fix, those probes failed after the
// restart and suspected the new generation at incarnation 0 (refuted at once,
// but seen as suspect by several observers right after the restart).
import { describe, expect, it } from 'vitest';
import { SimCluster, withSeed } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

describe('stale probes across a restart, 100 members', () => {
  it.each(Array.from({ length: 20 }, (_, k) => 9001 + k))('no observer suspects the new life of a member restarted while suspect (seed %i)', (fallback) => {
    const seed = testSeed(fallback);
    withSeed('stale probe', seed, () => {
      const n = 100;
      let victimId = '';
      let newGeneration = -1;
      const suspectsOfNewLife: string[] = [];
      let suspectsOfOldLife = 0;
      const c = new SimCluster({
        seed,
        n,
        onEvent: (i, e) => {
          if (e.type !== 'suspect' || e.member.id !== victimId) return;
          if (e.member.generation === newGeneration) suspectsOfNewLife.push(`n${i} at ${e.atMs} ms, incarnation ${e.member.incarnation}`);
          else suspectsOfOldLife++;
        },
      });
      c.start(1000);
      c.runFor(5000);
      const victim = 10 + c.random.int(n - 10); // not one of the seeds (0..2)
      victimId = c.ids[victim]!;
      c.crash(victim);
      // Down long enough to be suspected widely, short enough that it is not dead yet: probes of the old
      // process are in flight at every moment (about one per second cluster-wide).
      c.runUntil(() => suspectsOfOldLife >= 20, 10_000, 10);
      c.runFor(c.random.int(1000));
      newGeneration = c.generations[victim]! + 1;
      c.restart(victim);
      c.runFor(10_000);
      expect(suspectsOfOldLife).toBeGreaterThanOrEqual(20);
      expect(c.converged()).toBe(true);
      expect(suspectsOfNewLife).toEqual([]);
    });
  }, 60_000);
});
