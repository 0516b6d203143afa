// Join convergence (issue 15): 50 members join through one seed at once, 20
// runs. Every member must see every other within 2 s in every run, so none
// waits for the periodic push-pull (30 s and more) to learn of a join. Before
// the join follow-up push-pull and the longer-lived join rumors, 6 of these 20
// runs had a member that lacked another until 21-45 s.
import { describe, expect, it } from 'vitest';
import { SimCluster } from '../../src/testing/sim-cluster.ts';
import { testSeed } from './seed.ts';

const N = 50;
const RUNS = 20;

/** Member 0 starts; the others start 10-35 ms later, all joining through it. Returns when all see all (or undefined). */
function joinBurst(seed: number, lossRate: number): { allAt: number | undefined; lacking: string[] } {
  const c = new SimCluster({ seed, n: N, bootstrap: 'join', seedCount: 1, link: { lossRate } });
  c.net.timer(c.addrs[0]!, 0, (now) => {
    c.node(0).start(now);
    c.flush(0);
  });
  for (let i = 1; i < N; i++) {
    c.net.timer(c.addrs[i]!, 10 + c.random.int(25), (now) => {
      c.node(i).start(now);
      c.flush(i);
    });
  }
  const allAt = c.runUntil(() => c.liveIndices().every((i) => c.node(i).numLive === N), 2000, 10);
  const lacking: string[] = [];
  if (allAt === undefined) {
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (i !== j && c.node(i).statusOf(c.ids[j]!) === undefined) lacking.push(`n${i} lacks n${j}`);
  }
  return { allAt, lacking };
}

describe('join convergence, 50 members through one seed, 20 runs', () => {
  it.each([0, 0.05])('every member sees every other within 2 s in every run (loss %d)', (lossRate) => {
    const base = testSeed(16_001);
    const times: number[] = [];
    const failures: string[] = [];
    for (let k = 0; k < RUNS; k++) {
      const seed = base + k;
      const r = joinBurst(seed, lossRate);
      if (r.allAt === undefined) failures.push(`seed ${seed} (rerun with SIM_SEED=${seed}): not all after 2 s; ${r.lacking.slice(0, 5).join(', ')}`);
      else times.push(r.allAt);
    }
    times.sort((a, b) => a - b);
    console.log(`[seeds ${base}..${base + RUNS - 1}] loss ${lossRate}: all see all after ${times[0]?.toFixed(0)}-${times.at(-1)?.toFixed(0)} ms in ${times.length} of ${RUNS} runs`);
    expect(failures).toEqual([]);
  }, 60_000);
});

describe('joins into a running cluster, 50 members, 20 runs', () => {
  it('10 members rejoining one by one (new lives) at 10% loss are seen by every member within 3 s of the last', () => {
    // Here every join reaches the established members by rumor only, so this checks the longer-lived join rumors.
    const base = testSeed(16_101);
    const failures: string[] = [];
    const times: number[] = [];
    for (let k = 0; k < RUNS; k++) {
      const seed = base + k;
      const c = new SimCluster({ seed, n: N, link: { lossRate: 0.1 } });
      const joiners = Array.from({ length: 10 }, (_, j) => N - 10 + j);
      for (const j of joiners) c.crash(j);
      c.start(1000);
      c.runFor(65_000); // dead everywhere by now
      const t0 = c.now;
      joiners.forEach((j, n) => c.scheduler.schedule(t0 + 300 * n, () => void c.restart(j)));
      c.runFor(300 * joiners.length);
      const lastAt = t0 + 300 * (joiners.length - 1);
      const at = c.runUntil(() => c.liveIndices().every((i) => c.node(i).numLive === N), 3000 - (c.now - lastAt), 10);
      if (at === undefined) failures.push(`seed ${seed} (rerun with SIM_SEED=${seed})`);
      else times.push(at - lastAt);
    }
    console.log(`[seeds ${base}..${base + RUNS - 1}] every member sees all 50 ${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)} ms after the last rejoin in ${times.length} of ${RUNS} runs`);
    expect(failures).toEqual([]);
  }, 120_000);
});
