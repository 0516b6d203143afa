// The failure-detection trade-off curve of docs/gossip.md: for one tuning,
// how fast a crash is seen dead at N = 100, and how many live members are
// declared dead under loss and pauses. Simulation (virtual time), so the
// figures do not depend on the machine's load.
//
//   node --conditions=@hearsay/source --import tsx bench/gossip/detection-curve.ts --config='{"suspicionMult":2,"suspicionFloorMult":0}' [--hours=1] [--seeds=3]
//
// Detection: 8 crashes, one at a time, after a quiet minute, at 0% and at 10%
// loss: the per-observer p50 of the time from crash to "dead", and the p50
// over crashes of the time until every live member sees it dead.
// False deaths: `--seeds` runs of `--hours` simulated hours per load, counted
// as (observer, member) pairs where a live member was declared dead. Loads:
// 20% and 30% loss; 10% and 20% loss with member n42 pausing 2 s every 2-62 s;
// 10% loss with 4 s and 6 s pauses.

import { percentile } from '@hearsay/sim';
import type { GossipTuning } from '@hearsay/gossip';
import { SimCluster } from '@hearsay/gossip/testing';

const args = new Map(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const eq = a.indexOf('=');
      return [a.slice(2, eq < 0 ? undefined : eq), eq < 0 ? '' : a.slice(eq + 1)];
    }),
);
const tuning = JSON.parse(args.get('config') ?? '{}') as Partial<GossipTuning>;
const hours = Number(args.get('hours') ?? 1);
const seeds = Number(args.get('seeds') ?? 3);
const N = 100;

function detect(loss: number, seed: number): { perObserverP50: number; allP50: number } {
  const crashed = new Map<string, number>();
  const perObserver: number[] = [];
  const all: number[] = [];
  let counting = false;
  const c = new SimCluster({
    seed,
    n: N,
    tuning,
    link: { lossRate: loss },
    onEvent: (_i, e) => {
      const at = crashed.get(e.member.id);
      if (counting && e.type === 'dead' && at !== undefined) perObserver.push(e.atMs - at);
    },
  });
  c.start(1000);
  c.runFor(60_000);
  counting = true;
  for (let k = 0; k < 8; k++) {
    let victim = c.random.int(N);
    while (!c.isUp(victim)) victim = c.random.int(N);
    const t0 = c.now;
    crashed.set(c.ids[victim]!, t0);
    c.crash(victim);
    const at = c.runUntil(() => c.allSee(victim, ['dead', 'left']), 120_000, 20);
    all.push(at === undefined ? Infinity : at - t0);
    c.runFor(5000);
  }
  return { perObserverP50: percentile(perObserver, 50), allP50: percentile(all, 50) };
}

function falseDeaths(loss: number, pauseMs: number, seed: number): number {
  let deaths = 0;
  const c = new SimCluster({ seed, n: N, tuning, link: { lossRate: loss }, onEvent: (_i, e) => void (e.type === 'dead' && deaths++) });
  if (pauseMs > 0) {
    const next = (at: number): void =>
      c.scheduler.schedule(at, (now) => {
        c.stall(42, pauseMs);
        next(now + pauseMs + c.random.int(60_000));
      });
    next(5000 + c.random.int(30_000));
  }
  c.start(1000);
  c.runFor(hours * 3600_000);
  return deaths;
}

const started = performance.now();
const sum = (loss: number, pauseMs: number, base: number): number => {
  let total = 0;
  for (let k = 0; k < seeds; k++) total += falseDeaths(loss, pauseMs, base + 100 * k);
  return total;
};
const d0 = detect(0, 11);
const d10 = detect(0.1, 12);
const loads: [string, number, number, number][] = [
  ['20% loss', 0.2, 0, 21],
  ['10% loss, 2 s pauses', 0.1, 2000, 22],
  ['20% loss, 2 s pauses', 0.2, 2000, 23],
  ['30% loss', 0.3, 0, 24],
  ['10% loss, 4 s pauses', 0.1, 4000, 25],
  ['10% loss, 6 s pauses', 0.1, 6000, 26],
];
const fd = loads.map(([name, loss, pause, base]) => `${name} ${sum(loss, pause, base)}`);
const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
console.log(
  `${JSON.stringify(tuning)}: crash seen dead, per-observer p50 ${s(d0.perObserverP50)} (0% loss) / ${s(d10.perObserverP50)} (10%); all see it dead, p50 ${s(d0.allP50)}; ` +
    `false deaths over ${seeds} × ${hours} h: ${fd.join(', ')} (${((performance.now() - started) / 1000).toFixed(0)} s)`,
);
