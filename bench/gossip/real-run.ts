// One real-socket run of Hearsay gossip for bench/gossip (`--part=real`): N
// members (`startGossip`, default LAN tuning) in this process on 127.0.0.1,
// through the four phases below, and one JSON line of results on stdout. The
// memberlist side (bench/gossip/memberlist/main.go) runs the same phases with
// the same definitions; run.ts alternates the two and prints the table.
//
//   node --conditions=@hearsay/source --import tsx bench/gossip/real-run.ts --n=100 --seed=1 [--phases=join,crash] [--config='{"suspicionMult":4}']
//
// Phases:
//  1. join: member 0 starts; then members 1..N-1 start at once and join
//     through it. Per member: time from the start of the phase until it sees
//     all N members live (alive or suspect).
//  2. crash: after `--settle-ms`, idle CPU is measured over `--idle-ms`; then
//     one random member other than 0 stops without leaving (its sockets
//     close, as in a crash). Per live member: time until it sees it dead.
//  3. restart: the victim starts again on the same port with a higher
//     generation, joining through member 0. Per member: time until it sees the
//     victim's new life alive.
//  4. broadcast: one random member broadcasts a 64-byte user event
//     (`broadcastEvent`). Per member: time until it is delivered.
// False deaths: (observer, member) pairs where a member other than the
// victim was declared dead at any time after the join phase started.

import { Random } from '@hearsay/sim';
import { memoryGenerationStore, startGossip, type GossipEvent, type GossipRuntime, type GossipTuning } from '@hearsay/gossip';

const args = new Map(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const [k, v] = a.slice(2).split('=');
      return [k!, v ?? ''];
    }),
);
const N = Number(args.get('n') ?? 10);
const SEED = Number(args.get('seed') ?? 1);
const SETTLE_MS = Number(args.get('settle-ms') ?? 5000);
const IDLE_MS = Number(args.get('idle-ms') ?? 10_000);
const PHASES = (args.get('phases') ?? 'join,crash,restart,broadcast').split(',');
/** Tuning overrides as JSON (e.g. --config={"suspicionMult":4}), to measure the curve on real sockets. */
const CONFIG = JSON.parse(args.get('config') ?? '{}') as Partial<GossipTuning>;

interface PhaseResult {
  ms: number[];
  missing: number;
}

/** The victim and broadcaster picks, reproducible from --seed. */
const rng = new Random(SEED).next;
const names = Array.from({ length: N }, (_, i) => `m${i}`);
const stores = names.map(() => memoryGenerationStore());
const members: (GossipRuntime | undefined)[] = new Array(N).fill(undefined);
/** Per observer: the members it sees live (not itself). */
const live = names.map(() => new Set<string>());
const sawAll = new Map<string, number>();
const sawDead = new Map<string, number>();
const sawBack = new Map<string, number>();
const gotEvent = new Map<string, number>();
let victim = -1;
let victimGeneration = -1;
let crashAt = 0;
let falseDeaths = 0;

function watch(i: number, r: GossipRuntime): void {
  const name = names[i]!;
  r.on('event', (e: GossipEvent) => {
    const set = live[i]!;
    const id = e.member.id;
    const now = performance.now();
    switch (e.type) {
      case 'join':
      case 'alive':
      case 'suspect':
        set.add(id);
        if (set.size === N - 1 && !sawAll.has(name)) sawAll.set(name, now);
        if (victim >= 0 && id === names[victim] && e.type !== 'suspect' && e.member.generation === victimGeneration && !sawBack.has(name)) sawBack.set(name, now);
        break;
      case 'dead':
      case 'left':
        set.delete(id);
        if (victim >= 0 && id === names[victim] && crashAt > 0) {
          if (!sawDead.has(name)) sawDead.set(name, now);
        } else {
          falseDeaths++;
        }
        break;
      case 'update':
        break;
    }
  });
  r.onUserEvent((event) => {
    if (!gotEvent.has(name) && event.name === 'bench') gotEvent.set(name, performance.now());
  });
}

async function startMember(i: number, seeds: string[], port = 0): Promise<GossipRuntime> {
  const r = await startGossip({ id: names[i]!, host: '127.0.0.1', port, seeds, persistence: stores[i]!, config: CONFIG });
  members[i] = r;
  watch(i, r);
  return r;
}

function result(t0: number, ts: Map<string, number>, who: readonly string[]): PhaseResult {
  const ms: number[] = [];
  let missing = 0;
  for (const name of who) {
    const t = ts.get(name);
    if (t === undefined) missing++;
    else ms.push(Math.round((t - t0) * 1000) / 1000);
  }
  ms.sort((a, b) => a - b);
  return { ms, missing };
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const out: Record<string, unknown> = { system: 'hearsay', n: N };

  // Phase 1: join.
  const seed = await startMember(0, []);
  const seedAddr = seed.localAddress;
  const joinAt = performance.now();
  await Promise.all(names.slice(1).map((_, k) => startMember(k + 1, [seedAddr])));
  await waitFor(() => sawAll.size === N, 60_000);
  out['join'] = result(joinAt, sawAll, names);

  if (PHASES.includes('crash')) {
    await sleep(SETTLE_MS);
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    await sleep(IDLE_MS);
    const cpu = process.cpuUsage(cpu0);
    out['idleCpuPerMemberPct'] = (100 * ((cpu.user + cpu.system) / 1000)) / (performance.now() - wall0) / N;

    victim = 1 + Math.floor(rng() * (N - 1));
    const v = members[victim]!;
    const port = Number(v.localAddress.slice(v.localAddress.lastIndexOf(':') + 1));
    const others = names.filter((_, i) => i !== victim);
    crashAt = performance.now();
    members[victim] = undefined;
    await v.stop({ leave: false });
    await waitFor(() => others.every((o) => sawDead.has(o)), 90_000);
    out['crash'] = result(crashAt, sawDead, others);

    if (PHASES.includes('restart')) {
      await sleep(2000);
      victimGeneration = v.generation + 1;
      const restartAt = performance.now();
      const r = await startMember(victim, [seedAddr], port);
      victimGeneration = r.generation;
      await waitFor(() => others.every((o) => sawBack.has(o)), 30_000);
      out['restart'] = result(restartAt, sawBack, others);
    }
  }

  if (PHASES.includes('broadcast')) {
    // From a live member; reach is counted over live members.
    await sleep(2000);
    const live = names.filter((_, i) => members[i] !== undefined);
    const from = names.indexOf(live[Math.floor(rng() * live.length)]!);
    const at = performance.now();
    members[from]!.broadcastEvent('bench', new Uint8Array(64).fill(7));
    await waitFor(() => live.every((name) => gotEvent.has(name)), 30_000);
    out['broadcast'] = result(at, gotEvent, live);
  }
  out['falseDeaths'] = falseDeaths;
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await Promise.all(members.map((m) => m?.stop({ leave: false })));
}

await main();
