// bench/gossip: the gossip core over @hearsay/sim (in-process messages, virtual
// time), so figures are protocol figures, not socket figures.
//
//   pnpm bench:gossip                  everything (N = 100, 1000, 10000)
//   pnpm bench:gossip --n=100,1000     only these cluster sizes (rounds, traffic)
//   pnpm bench:gossip --part=rounds|traffic|detection
//   pnpm bench:gossip --part=traffic --modes=pull   only these modes (traffic; rounds needs all three)
//   pnpm bench:gossip --part=real [--n=10,50,100] [--runs=6] [--phases=join,crash,restart,broadcast]
//                                      real sockets, beside memberlist 0.2.2 (real.ts; not part of the default run)
//
// Prints, beside each of our figures, a baseline from the same run and the ratio:
//  - rounds to 100%: the bound log2(N) + ln(N) (single-target push, Pittel 1987);
//  - detection: our protocol with memberlist's suspicion timeouts (suspicionMult 4),
//    SWIM without Lifeguard (awareness off, fixed suspicion timeout) and
//    Cassandra's phi-accrual detector (detector: 'phi'), same network;
//  - real sockets (--part=real): memberlist 0.2.2 itself, run in the same
//    invocation, alternating with ours (real.ts).
// The simulation harness comes from the gossip package's testing entry point
// (`@hearsay/gossip/testing`), as any other user of it would import it.

import { percentile } from '@hearsay/sim';
import type { DisseminationMode, GossipTuning, PacketMessage } from '@hearsay/gossip';
import { packetBytes, SimCluster } from '@hearsay/gossip/testing';
import { benchReal } from './real.ts';

const args = process.argv.slice(2);
const part = args.find((a) => a.startsWith('--part='))?.slice('--part='.length);
const SIZES = (args.find((a) => a.startsWith('--n='))?.slice('--n='.length) ?? '100,1000,10000').split(',').map(Number);
const SEED = Number(args.find((a) => a.startsWith('--seed='))?.slice('--seed='.length) ?? 20261123);
const MODES = (args.find((a) => a.startsWith('--modes='))?.slice('--modes='.length) ?? 'push,pull,push-pull').split(',') as DisseminationMode[];
const started = performance.now();

function secs(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

// ---- rounds to 100% ---------------------------------------------------------

/**
 * Full views up to N = 1000. At N = 10000 full views would be 10^8 member
 * records (~17 GB) in one process, so each member starts knowing 200 random
 * others and tracks at most 250 (`membersMax`: gossip about further members is
 * dropped, as the bound prescribes). The member whose update is measured is in
 * every view, so every member can take and relay it.
 */
function viewSizeFor(n: number): number | undefined {
  return n > 1000 ? 200 : undefined;
}

function clusterOptions(n: number, tuning: Partial<GossipTuning>): { tuning: Partial<GossipTuning>; viewSize?: number; viewIncludes?: number[] } {
  const viewSize = viewSizeFor(n);
  if (viewSize === undefined) return { tuning };
  return { tuning: { ...tuning, membersMax: viewSize + 50 }, viewSize, viewIncludes: [0] };
}

/** Rounds until 99% and 100% of the members hold the update. */
function roundsTo100(n: number, mode: DisseminationMode, seed: number, fanout = 3): { r99: number; r100: number } {
  const c = new SimCluster({ seed, n, ...clusterOptions(n, { mode, gossipFanout: fanout }) });
  c.start(1000);
  c.runFor(n > 1000 ? 3000 : 5000); // settle: start-up announcements retire
  const origin = viewSizeFor(n) === undefined ? c.random.int(n) : 0;
  const id = c.ids[origin]!;
  const t0 = c.now;
  c.node(origin).setLocalState('load', '0.42');
  c.flush(origin);
  let missing = n - 1;
  let at99: number | undefined;
  const at = c.runUntil(
    () => {
      missing = 0;
      for (let i = 0; i < n; i++) if (i !== origin && c.node(i).stateOf(id, 'load') === undefined) missing++;
      if (at99 === undefined && missing <= n / 100) at99 = c.now;
      return missing === 0;
    },
    300_000,
    10,
  );
  const round = c.node(0).tuning.gossipIntervalMs;
  return {
    r99: at99 === undefined ? Infinity : (at99 - t0) / round,
    r100: at === undefined ? Infinity : (at - t0) / round,
  };
}

function benchRounds(): void {
  console.log('\n## Rounds to 100% (one state update; round = gossip interval 200 ms; fanout 3)\n');
  console.log('Cells: rounds to 100% (rounds to 99% in brackets).\n');
  console.log('| N | push | pull | push-pull | push, fanout 1 | bound log2 N + ln N | push / bound | push-pull / bound | runs | time |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const n of SIZES) {
    const t = performance.now();
    const runs = n >= 10000 ? 1 : n >= 1000 ? 3 : 5;
    const med: Record<string, number> = {};
    const cell: Record<string, string> = {};
    const measure = (key: string, mode: DisseminationMode, fanout: number): void => {
      const r100: number[] = [];
      const r99: number[] = [];
      for (let k = 0; k < runs; k++) {
        const r = roundsTo100(n, mode, SEED + k, fanout);
        r100.push(r.r100);
        r99.push(r.r99);
      }
      med[key] = percentile(r100, 50);
      cell[key] = `${percentile(r100, 50).toFixed(1)} (${percentile(r99, 50).toFixed(1)})`;
    };
    for (const mode of MODES) measure(mode, mode, 3);
    // Fanout 1 is the setting the classic bound is about: a check on the simulator as much as on us.
    measure('fanout1', 'push', 1);
    const bound = Math.log2(n) + Math.log(n);
    console.log(
      `| ${n}${viewSizeFor(n) ? ` (views of ${viewSizeFor(n)})` : ''} | ${cell['push']} | ${cell['pull']} | ${cell['push-pull']} | ${cell['fanout1']} | ${bound.toFixed(1)} | ${(med['push']! / bound).toFixed(2)} | ${(med['push-pull']! / bound).toFixed(2)} | ${runs} (median) | ${secs(t)} s |`,
    );
  }
}

// ---- traffic -----------------------------------------------------------------

function benchTraffic(): void {
  console.log('\n## Traffic per member (steady state: probes + gossip; every member updates one key every 10 s)\n');
  console.log('| N | mode | datagrams/s | messages/s | bytes/s | stream exchanges/s | time |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const n of SIZES) {
    for (const mode of MODES) {
      const t = performance.now();
      let datagrams = 0;
      let messages = 0;
      let bytes = 0;
      let counting = false;
      const sample = n >= 10000 ? 10 : 1; // pack every 10th datagram at N = 10000 (bytes scaled up)
      const c = new SimCluster({
        seed: SEED,
        n,
        ...clusterOptions(n, { mode }),
        onTransmit: (_i, msgs: readonly PacketMessage[]) => {
          if (!counting) return;
          datagrams++;
          messages += msgs.length;
          if (datagrams % sample === 0) bytes += packetBytes(msgs) * sample;
        },
      });
      for (let i = 0; i < n; i++) {
        const every = (at: number): void =>
          c.scheduler.schedule(at, (now) => {
            if (c.isUp(i)) {
              c.node(i).setLocalState('load', (now % 997).toString());
              c.flush(i);
            }
            every(now + 10_000);
          });
        every(2000 + c.random.int(10_000));
      }
      c.start(1000);
      c.runFor(12_000);
      const streams0 = c.liveIndices().reduce((s, i) => s + c.node(i).stats.streamsOpened, 0);
      counting = true;
      const windowMs = n >= 10000 ? 10_000 : 30_000;
      c.runFor(windowMs);
      const streams = c.liveIndices().reduce((s, i) => s + c.node(i).stats.streamsOpened, 0) - streams0;
      const per = (x: number): string => (x / n / (windowMs / 1000)).toFixed(1);
      console.log(`| ${n} | ${mode} | ${per(datagrams)} | ${per(messages)} | ${per(bytes)} | ${(streams / n / (windowMs / 1000)).toFixed(3)} | ${secs(t)} s |`);
    }
  }
}

// ---- detection -------------------------------------------------------------------

interface DetectionResult {
  p50: number;
  p99: number;
  missed: number;
  falseDead: number;
  falseSuspect: number;
}

const BASELINES: Record<string, Partial<GossipTuning>> = {
  'SWIM + Lifeguard (ours)': {},
  "memberlist's timeouts (suspicionMult 4)": { suspicionMult: 4, suspicionFloorMult: 0 },
  'SWIM without Lifeguard': { awarenessMaxMultiplier: 1, suspicionMaxTimeoutMult: 1 },
  'phi accrual (Cassandra)': { detector: 'phi' },
};

function detection(n: number, loss: number, tuning: Partial<GossipTuning>, seed: number, quietMs: number, crashes: number): DetectionResult {
  const crashed = new Map<string, number>();
  const detect: number[] = [];
  let falseDead = 0;
  let falseSuspect = 0;
  let counting = false; // not during start-up, when early probes reach members not started yet
  const c = new SimCluster({
    seed,
    n,
    tuning,
    link: { lossRate: loss },
    onEvent: (_i, e) => {
      const at = crashed.get(e.member.id);
      if (!counting) return;
      if (e.type === 'dead') {
        if (at === undefined) falseDead++;
        else detect.push(e.atMs - at);
      } else if (e.type === 'suspect' && at === undefined) {
        falseSuspect++;
      }
    },
  });
  c.start(1000);
  c.runFor(5000);
  counting = true;
  c.runFor(quietMs);
  let missed = 0;
  for (let k = 0; k < crashes; k++) {
    let victim = c.random.int(n);
    while (!c.isUp(victim)) victim = c.random.int(n);
    crashed.set(c.ids[victim]!, c.now);
    c.crash(victim);
    const at = c.runUntil(() => c.allSee(victim, ['dead', 'left']), 120_000, 100);
    if (at === undefined) {
      for (const i of c.liveIndices()) if (c.statusAt(i, victim) !== 'dead') missed++;
    }
    c.runFor(5000);
  }
  return { p50: percentile(detect, 50), p99: percentile(detect, 99), missed, falseDead, falseSuspect };
}

function benchDetection(): void {
  const n = 100;
  const quietMs = 10 * 60_000;
  const crashes = 5;
  console.log(`\n## Failure detection, N = ${n}: ${crashes} crashes after ${quietMs / 60_000} quiet minutes; per-observer detection time\n`);
  console.log('| loss | detector | p50 ms | p99 ms | missed | false dead (observer·member) | false suspect events | p99 vs ours | time |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const loss of [0, 0.01, 0.1, 0.2]) {
    let ours: DetectionResult | undefined;
    for (const [name, tuning] of Object.entries(BASELINES)) {
      const t = performance.now();
      const r = detection(n, loss, tuning, SEED, quietMs, crashes);
      ours ??= r;
      console.log(
        `| ${(loss * 100).toFixed(0)}% | ${name} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.missed} | ${r.falseDead} | ${r.falseSuspect} | ${(r.p99 / ours.p99).toFixed(2)} | ${secs(t)} s |`,
      );
    }
  }
}

console.log(`# bench/gossip — seed ${SEED}, Node ${process.version}, ${process.platform}/${process.arch}`);
if (part === undefined || part === 'rounds') benchRounds();
if (part === undefined || part === 'traffic') benchTraffic();
if (part === undefined || part === 'detection') benchDetection();
if (part === 'real') {
  const arg = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  await benchReal({
    sizes: (arg('n') ?? '10,50,100').split(',').map(Number),
    runs: Number(arg('runs') ?? 6),
    phases: (arg('phases') ?? 'join,crash,restart,broadcast').split(','),
    settleMs: Number(arg('settle-ms') ?? 5000),
    idleMs: Number(arg('idle-ms') ?? 10_000),
    seed: SEED,
  });
}
console.log(`\ntotal ${secs(started)} s`);
