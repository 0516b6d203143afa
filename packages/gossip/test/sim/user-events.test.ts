// User events in simulation: the reach test of state updates (1000 members,
// each mode, within the dissemination bound), and at-least-once with
// deduplication at 20% loss, where the rumor alone misses members and
// push-pull anti-entropy brings them the rest.
import { describe, expect, it } from 'vitest';
import type { DisseminationMode } from '@hearsay/gossip';
import { SimCluster, withSeed } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

const N = 1000;
const BOUND_ROUNDS = Math.log2(N) + Math.log(N);

describe('user events, 1000 members', () => {
  it.each(['push', 'pull', 'push-pull'] as DisseminationMode[])(
    'mode %s: one user event reaches every live member, once',
    (mode) => {
      const seed = testSeed(15_000 + mode.length);
      withSeed(`user event ${mode}`, seed, () => {
        const delivered = new Array<number>(N).fill(0);
        const c = new SimCluster({ seed, n: N, tuning: { mode }, onUserEvent: (i, e) => void (e.name === 'deploy' && delivered[i]!++) });
        c.start(1000);
        c.runFor(5000);
        const origin = c.random.int(N);
        const t0 = c.now;
        c.node(origin).broadcastEvent('deploy', new Uint8Array(64).fill(1), c.now);
        c.flush(origin);
        const at = c.runUntil(() => delivered.every((d) => d > 0), 60_000, 10);
        const rounds = at === undefined ? Infinity : (at - t0) / c.node(0).tuning.gossipIntervalMs;
        console.log(`[seed ${seed}] ${mode}: user event at 100% of ${N} after ${rounds.toFixed(1)} rounds (bound ${BOUND_ROUNDS.toFixed(1)})`);
        expect(delivered.filter((d) => d === 0).length).toBe(0);
        expect(rounds).toBeLessThanOrEqual(BOUND_ROUNDS);
        // The rumor has retired everywhere by now (λ·log N = 16 sends per member, a few rounds): no second delivery.
        c.runFor(10_000);
        expect(delivered.every((d) => d === 1)).toBe(true);
      });
    },
    120_000,
  );
});

describe('user events at 20% loss, 100 members', () => {
  it('every member delivers every event exactly once; push-pull brings what the rumors missed', () => {
    const seed = testSeed(15_101);
    withSeed('user events lossy', seed, () => {
      const n = 100;
      const events = 40;
      const delivered = Array.from({ length: n }, () => new Map<string, number>());
      const c = new SimCluster({ seed, n, link: { lossRate: 0.2 }, onUserEvent: (i, e) => void delivered[i]!.set(`${e.origin}/${e.seq}`, (delivered[i]!.get(`${e.origin}/${e.seq}`) ?? 0) + 1) });
      c.start(1000);
      c.runFor(5000);
      const sent: string[] = [];
      for (let k = 0; k < events; k++) {
        c.runFor(1000 + c.random.int(1000));
        const origin = c.random.int(n);
        const e = c.node(origin).broadcastEvent(`e${k}`, new Uint8Array(100).fill(k), c.now);
        c.flush(origin);
        sent.push(`${e.origin}/${e.seq}`);
      }
      const lastAt = c.now;
      const missing = (): number => {
        let m = 0;
        for (const d of delivered) for (const k of sent) if (!d.has(k)) m++;
        return m;
      };
      c.runFor(2000);
      const missedByRumor = missing();
      const at = c.runUntil(() => missing() === 0, 5 * 60_000, 500);
      console.log(`[seed ${seed}] ${events} events at 20% loss: ${missedByRumor} (member, event) pairs missing 2 s after the last, all delivered ${at === undefined ? 'never' : `${((at - lastAt) / 1000).toFixed(1)} s after it`}`);
      expect(at).toBeDefined();
      for (const d of delivered) for (const count of d.values()) expect(count).toBe(1);
      const dup = c.liveIndices().reduce((s, i) => s + c.node(i).stats.userEventsDuplicate, 0);
      expect(dup).toBeGreaterThan(0);
    });
  }, 120_000);
});
