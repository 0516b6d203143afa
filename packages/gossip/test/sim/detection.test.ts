// 1000 members: a crashed member is declared dead by every live member.
import { percentile } from '@hearsay/sim';
import { describe, expect, it } from 'vitest';
import { SimCluster, withSeed } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

describe('failure detection, 1000 members', () => {
  it('a crashed member is declared dead by every live member; p50 and p99 recorded', () => {
    const seed = testSeed(2001);
    withSeed('detection', seed, () => {
      const n = 1000;
      let crashedId = '';
      let crashAt = 0;
      const detectedAfter = new Map<number, number>();
      let falseDeaths = 0;
      const c = new SimCluster({
        seed,
        n,
        onEvent: (i, e) => {
          if (e.type !== 'dead') return;
          if (e.member.id === crashedId) {
            if (!detectedAfter.has(i)) detectedAfter.set(i, e.atMs - crashAt);
          } else {
            falseDeaths++;
          }
        },
      });
      c.start(1000);
      c.runFor(5000);
      const victim = c.random.int(n);
      crashedId = c.ids[victim]!;
      crashAt = c.now;
      c.crash(victim);
      const at = c.runUntil(() => c.allSee(victim, ['dead']), 120_000, 100);
      const v = [...detectedAfter.values()];
      const p50 = percentile(v, 50);
      const p99 = percentile(v, 99);
      console.log(`[seed ${seed}] crash of ${crashedId}: dead at all ${n - 1} live members after ${at === undefined ? 'never' : at - crashAt} ms; per-member detection p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms`);
      expect(at).toBeDefined();
      expect(detectedAfter.size).toBe(n - 1);
      expect(falseDeaths).toBe(0);
      // Lifeguard with k confirmations: the lower suspicion timeout 2·log10(1000)·1 s = 6 s, plus time to first probe.
      expect(p50).toBeGreaterThanOrEqual(6000);
      expect(p99).toBeLessThan(30_000);
    });
  }, 120_000);
});
