// Clock offsets measured by the probes (issue 13, gossip part): members with
// skewed and drifting wall clocks, on a network with jitter and loss; every
// member's estimate of every other is within its own error bound of the true
// offset, and a clock step is followed at the next samples.
import { percentile } from '@hearsay/sim';
import { describe, expect, it } from 'vitest';
import { SimCluster, withSeed } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

const N = 20;

function checkAll(c: SimCluster): { checked: number; errors: number[]; violations: string[] } {
  const violations: string[] = [];
  const errors: number[] = [];
  let checked = 0;
  for (const i of c.liveIndices()) {
    const offsets = c.node(i).clockOffsets(c.now);
    for (const [id, est] of offsets) {
      const j = c.ids.indexOf(id);
      const truth = c.trueOffset(i, j);
      checked++;
      errors.push(est.errorMs);
      if (Math.abs(est.offsetMs - truth) > est.errorMs) {
        violations.push(`n${i} estimates ${id} at ${est.offsetMs.toFixed(1)} ± ${est.errorMs.toFixed(1)} ms, truly ${truth.toFixed(1)} ms`);
      }
    }
  }
  return { checked, errors, violations };
}

describe('clock offsets in simulation: skewed and drifting clocks, jitter and loss', () => {
  it('every estimate holds the true offset within its error bound; a clock step is followed', () => {
    const seed = testSeed(13_001);
    withSeed('clock offsets', seed, () => {
      const c = new SimCluster({
        seed,
        n: N,
        link: { delayMs: 1, jitterMs: 20, lossRate: 0.05 },
        clockSkew: (i) =>
          i === 3 ? { offsetMs: 800 } // a member 800 ms ahead
          : i === 7 ? { offsetMs: 40, driftPpm: 60 } // drifting: every pair stays within the 100 ppm of relative drift the estimates allow for
          : i === 11 ? { offsetMs: -300, driftPpm: -30 }
          : i === 0 ? { driftPpm: 10 } // observers drift too
          : undefined,
      });
      c.start(1000);
      c.runFor(5 * 60_000);

      const first = checkAll(c);
      // Every member has probed every other several times by now (one per N - 1 probe intervals).
      expect(first.checked).toBe(N * (N - 1));
      expect(first.violations).toEqual([]);
      const p50 = percentile(first.errors, 50);
      console.log(`[seed ${seed}] ${first.checked} estimates after 5 min: error bound p50 ${p50.toFixed(1)} ms, max ${Math.max(...first.errors).toFixed(1)} ms (one-way delay 1-21 ms)`);
      // Low round trips win over the window (the mean RTT is about 22 ms here, so a typical single sample is ± 12 ms);
      // an aging sample is widened by the 100 ppm drift allowance, so fresh ones win too.
      expect(p50).toBeLessThan(12);
      expect(Math.max(...first.errors)).toBeLessThan(2 * 21 / 2 + 1 + 20);
      const ofN3 = c.node(0).clockOffsets(c.now).get('n3')!;
      expect(Math.abs(ofN3.offsetMs - 800)).toBeLessThan(15);
      // The drifting member has moved 60 ppm × 5 min = 18 ms, and the estimates moved with it.
      expect(Math.abs(c.node(1).clockOffsets(c.now).get('n7')!.offsetMs - c.trueOffset(1, 7))).toBeLessThanOrEqual(c.node(1).clockOffsets(c.now).get('n7')!.errorMs);

      // n5's clock is stepped one hour ahead (restarted under faketime would also bump its generation; this is a live step).
      c.setClockSkew(5, { offsetMs: 3600_000 });
      const steppedAt = c.now;
      // Followed both ways: the others' estimates of n5, and n5's estimates of every other (its own clock moved).
      const followed = c.runUntil(() => checkAll(c).violations.length === 0, 5 * 60_000, 500);
      console.log(`[seed ${seed}] a +1 h step of n5 followed by every estimate, both ways, after ${followed === undefined ? 'never' : followed - steppedAt} ms`);
      expect(followed).toBeDefined();
      // Each pair is probed once per pass of N - 1 members (Lifeguard may stretch a pass), and a lost ack skips one.
      expect(followed! - steppedAt).toBeLessThan(3 * (N - 1) * 1000);
      const after = checkAll(c);
      expect(after.checked).toBe(N * (N - 1));
      const contradicted = c.liveIndices().reduce((sum, i) => sum + c.node(i).stats.clockSamplesContradicted, 0);
      expect(contradicted).toBeGreaterThanOrEqual(N - 1);
    });
  }, 60_000);
});
