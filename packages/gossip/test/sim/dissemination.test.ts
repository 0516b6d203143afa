// 1000 members: one state update reaches every live member, in each mode.
import { describe, expect, it } from 'vitest';
import type { DisseminationMode } from '@hearsay/gossip';
import { SimCluster, withSeed } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

const N = 1000;
const BOUND_ROUNDS = Math.log2(N) + Math.log(N); // ≈ 16.9: single-target push, Pittel/Karp et al.

describe('dissemination, 1000 members', () => {
  it.each(['push', 'pull', 'push-pull'] as DisseminationMode[])(
    'mode %s: one state update reaches every live member',
    (mode) => {
      const seed = testSeed(1000 + mode.length);
      withSeed(`dissemination ${mode}`, seed, () => {
        const c = new SimCluster({ seed, n: N, tuning: { mode } });
        c.start(1000);
        c.runFor(5000); // settle: start-up rumors retire
        const origin = c.random.int(N);
        const originId = c.ids[origin]!;
        const t0 = c.now;
        c.node(origin).setLocalState('http', 'http://10.0.0.1:7000');
        c.flush(origin);
        let reached = 0;
        const all = () => {
          reached = 0;
          for (const i of c.liveIndices()) if (i === origin || c.node(i).stateOf(originId, 'http') !== undefined) reached++;
          return reached === N;
        };
        const at = c.runUntil(all, 60_000, 10);
        const rounds = at === undefined ? Infinity : (at - t0) / c.node(0).tuning.gossipIntervalMs;
        console.log(`[seed ${seed}] ${mode}: 100% of ${N} after ${at === undefined ? 'never' : `${at - t0} ms = ${rounds.toFixed(1)} rounds`} (bound log2 N + ln N = ${BOUND_ROUNDS.toFixed(1)})`);
        expect(reached, `reached ${reached}/${N}`).toBe(N);
        expect(rounds).toBeLessThanOrEqual(BOUND_ROUNDS);
      });
    },
    120_000,
  );
});
