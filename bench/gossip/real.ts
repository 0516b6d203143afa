// bench/gossip real-socket mode (`pnpm bench:gossip --part=real`): Hearsay and
// memberlist side by side, N members in one process each on 127.0.0.1, the
// same four phases (join convergence, crash detection with false deaths,
// restart seen alive, broadcast reach), several runs alternating the two
// systems, p50 / max per phase, idle CPU per member.
//
// Hearsay runs in a child process (real-run.ts); memberlist 0.2.2 (Go, its
// DefaultLANConfig) runs the same phases in bench/gossip/memberlist/main.go,
// built here offline against Debian's packaged source. Without Go or that
// package the memberlist columns show the figures published in issue 15,
// labelled as such.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from '@hearsay/sim';

const HERE = new URL('.', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;
const MEMBERLIST_GOPATH = '/usr/share/gocode';

export interface RealOptions {
  sizes: number[];
  runs: number;
  phases: string[];
  settleMs: number;
  idleMs: number;
  seed: number;
}

interface PhaseResult {
  ms: number[];
  missing: number;
}

interface RunResult {
  system: string;
  n: number;
  join?: PhaseResult;
  crash?: PhaseResult;
  restart?: PhaseResult;
  broadcast?: PhaseResult;
  falseDeaths: number;
  idleCpuPerMemberPct?: number;
}

const PHASES = ['join', 'crash', 'restart', 'broadcast'] as const;
type Phase = (typeof PHASES)[number];
const PHASE_LABEL: Record<Phase, string> = {
  join: 'join: all see all',
  crash: 'crash seen dead',
  restart: 'restart seen alive',
  broadcast: 'broadcast reach',
};

/** Issue 15's memberlist figures (N = 100, 6 undisturbed runs), for when Go is not available. */
const PUBLISHED_MEMBERLIST_N100: Partial<Record<Phase, string>> = {
  join: '1.2–1.6 s / 2.0–2.7 s (published)',
  crash: '10.5–13.1 s p50 (published)',
  restart: '0.55–1.0 s p50 (published)',
};

/** Build the memberlist harness; undefined (with the reason printed) when it cannot be built here. */
function buildMemberlist(): string | undefined {
  const out = join(tmpdir(), 'hearsay-memberlist-bench');
  if (!existsSync(join(MEMBERLIST_GOPATH, 'src/github.com/hashicorp/memberlist'))) {
    console.log(`memberlist source not found under ${MEMBERLIST_GOPATH} (apt-get install -y golang-go golang-github-hashicorp-memberlist-dev): memberlist columns show the published figures.`);
    return undefined;
  }
  try {
    execFileSync('go', ['build', '-o', out, './bench/gossip/memberlist'], {
      cwd: ROOT,
      env: { ...process.env, GO111MODULE: 'off', GOPATH: MEMBERLIST_GOPATH, GOFLAGS: '' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    return out;
  } catch (error) {
    console.log(`could not build the memberlist harness (${String(error)}): memberlist columns show the published figures.`);
    return undefined;
  }
}

function runChild(command: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve(JSON.parse(line) as RunResult);
    });
  });
}

function hearsayRun(n: number, seed: number, o: RealOptions): Promise<RunResult> {
  return runChild(process.execPath, [
    '--conditions=@hearsay/source',
    '--import',
    'tsx',
    join(HERE, 'real-run.ts'),
    `--n=${n}`,
    `--seed=${seed}`,
    `--settle-ms=${o.settleMs}`,
    `--idle-ms=${o.idleMs}`,
    `--phases=${o.phases.join(',')}`,
  ]);
}

function memberlistRun(binary: string, n: number, seed: number, o: RealOptions): Promise<RunResult> {
  return runChild(binary, ['-n', String(n), '-seed', String(seed), '-settle', `${o.settleMs}ms`, '-idle', `${o.idleMs}ms`, '-phases', o.phases.join(',')]);
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

interface Summary {
  p50s: number[];
  maxes: number[];
  missing: number;
}

function summarize(runs: RunResult[], phase: Phase): Summary | undefined {
  const s: Summary = { p50s: [], maxes: [], missing: 0 };
  for (const r of runs) {
    const p = r[phase];
    if (p === undefined) continue;
    s.missing += p.missing;
    if (p.ms.length === 0) continue;
    s.p50s.push(percentile(p.ms, 50));
    s.maxes.push(p.missing > 0 ? Infinity : Math.max(...p.ms));
  }
  return s.p50s.length === 0 ? undefined : s;
}

function cell(s: Summary | undefined): string {
  if (s === undefined) return '—';
  const range = (xs: number[]): string => {
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    return lo === hi ? fmt(lo) : `${fmt(lo)}–${hi === Infinity ? 'never (missing)' : fmt(hi)}`;
  };
  return `${fmt(percentile(s.p50s, 50))} (${range(s.p50s)}) / ${s.maxes.includes(Infinity) ? 'never' : fmt(percentile(s.maxes, 50))} (${range(s.maxes)})`;
}

function ratio(a: Summary | undefined, b: Summary | undefined): string {
  if (a === undefined || b === undefined) return '—';
  const p = percentile(a.p50s, 50) / percentile(b.p50s, 50);
  const m = percentile(a.maxes, 50) / percentile(b.maxes, 50);
  return `${p.toFixed(2)} / ${Number.isFinite(m) ? m.toFixed(2) : '—'}`;
}

export async function benchReal(o: RealOptions): Promise<void> {
  const binary = buildMemberlist();
  console.log(`\n## Real sockets: N members in one process on 127.0.0.1, ${o.runs} runs per system alternating, phases ${o.phases.join(', ')}\n`);
  console.log('Cells: median over runs of each run\'s p50 over members (range over runs) / median of each run\'s max (range). Ratio: Hearsay / memberlist, p50 / max.\n');
  console.log('| N | phase | Hearsay | memberlist 0.2.2 | ratio | runs within 2 s (Hearsay / memberlist) |');
  console.log('| ---: | --- | --- | --- | ---: | ---: |');
  const extra: string[] = [];
  const loads: number[] = [];
  for (const n of o.sizes) {
    const ours: RunResult[] = [];
    const theirs: RunResult[] = [];
    for (let k = 0; k < o.runs; k++) {
      const seed = o.seed + k;
      const order = k % 2 === 0 ? ['hearsay', 'memberlist'] : ['memberlist', 'hearsay'];
      for (const system of order) {
        const load = loadavg()[0]!;
        loads.push(load);
        let r: RunResult;
        if (system === 'hearsay') ours.push((r = await hearsayRun(n, seed, o)));
        else if (binary !== undefined) theirs.push((r = await memberlistRun(binary, n, seed, o)));
        else continue;
        process.stderr.write(`N=${n} run ${k + 1}/${o.runs} ${system}: load ${load.toFixed(2)} at start; ${runLine(r)}\n`);
      }
    }
    for (const phase of PHASES) {
      if (!o.phases.includes(phase)) continue;
      const a = summarize(ours, phase);
      const b = binary === undefined ? undefined : summarize(theirs, phase);
      const within = (runs: RunResult[]): string => `${runs.filter((r) => r[phase] !== undefined && r[phase]!.missing === 0 && Math.max(...r[phase]!.ms) <= 2000).length}/${runs.length}`;
      const baseline = binary === undefined ? (n === 100 ? (PUBLISHED_MEMBERLIST_N100[phase] ?? '—') : '—') : cell(b);
      console.log(`| ${n} | ${PHASE_LABEL[phase]} | ${cell(a)} | ${baseline} | ${ratio(a, b)} | ${phase === 'join' ? `${within(ours)} / ${binary === undefined ? '—' : within(theirs)}` : ''} |`);
    }
    const fd = (runs: RunResult[]): string => `${runs.reduce((s, r) => s + r.falseDeaths, 0)} in ${runs.length} runs`;
    const cpu = (runs: RunResult[]): string => {
      const xs = runs.map((r) => r.idleCpuPerMemberPct).filter((x): x is number => x !== undefined);
      return xs.length === 0 ? '—' : `${percentile(xs, 50).toFixed(3)}% of a core`;
    };
    extra.push(`| ${n} | ${fd(ours)} | ${binary === undefined ? '—' : fd(theirs)} | ${cpu(ours)} | ${binary === undefined ? '—' : cpu(theirs)} |`);
  }
  if (o.phases.includes('crash')) {
    console.log('\n| N | false deaths, Hearsay | false deaths, memberlist | idle CPU per member, Hearsay | idle CPU per member, memberlist |');
    console.log('| ---: | ---: | ---: | ---: | ---: |');
    for (const line of extra) console.log(line);
  }
  console.log(`\n1-minute load average at the start of each run: ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} (median ${percentile(loads, 50).toFixed(2)}) on ${cpus().length} cores`);
}

/** One run's figures in a line (p50 / max per phase, in ms), for the progress log. */
function runLine(r: RunResult): string {
  const parts: string[] = [];
  for (const phase of PHASES) {
    const p = r[phase];
    if (p === undefined) continue;
    parts.push(`${phase} ${p.ms.length === 0 ? '—' : `${percentile(p.ms, 50).toFixed(0)}/${Math.max(...p.ms).toFixed(0)}`}${p.missing > 0 ? ` (${p.missing} missing)` : ''}`);
  }
  parts.push(`false deaths ${r.falseDeaths}`);
  if (r.idleCpuPerMemberPct !== undefined) parts.push(`idle CPU/member ${r.idleCpuPerMemberPct.toFixed(3)}%`);
  return parts.join(', ');
}
