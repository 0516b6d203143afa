/**
 * Writes of growing values through a 3-node cluster on loopback (issue 17):
 * 1 KiB, 64 KiB and 1 MiB values beside 100-byte values (the baseline row,
 * measured in the same run), PUT at `quorum` through one node, RF 3. For each
 * size: throughput (requests and MiB per second), p50/p99 latency, the share
 * of 503 answers (load shed: `BUSY` with Retry-After, or `TIMEOUT`), other
 * errors, and the peak RSS of each node while it ran.
 *
 * Every node is a `hearsay start` child process with its default limits;
 * each size runs on a fresh cluster (a node's RSS does not shrink back after
 * large values, so a shared one would carry one size's peak into the next).
 * The load generator runs in this process (node:http, keep-alive),
 * `--connections` writers each sending its next PUT as soon as the last one
 * answered, keys at random from `--keys` so the disk stays bounded. Each size
 * runs once per round; rounds alternate the order; figures are medians over
 * rounds (peak RSS: the maximum, warm-up included).
 *
 *   pnpm bench:load [--duration-s 5] [--warmup-s 2] [--rounds 2] [--connections 32] [--keys 200]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts, startCluster, waitReady, type NodeProcess } from '../lib/cluster.ts';
import { stopProcess } from '../lib/process.ts';
import { fmt, machineLine, median } from '../lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '5' },
    'warmup-s': { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    keys: { type: 'string', default: '200' },
  },
});
const durationS = Number(args['duration-s']);
const warmupS = Number(args['warmup-s']);
const rounds = Number(args.rounds);
const connections = Number(args.connections);
const keyCount = Number(args.keys);

const SIZES = [100, 1024, 64 * 1024, 1024 * 1024] as const;
const MiB = 1024 * 1024;

interface Run {
  readonly requestsPerS: number;
  readonly mibPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Answers 503, of all answers and failures. */
  readonly shedShare: number;
  readonly shedCodes: Record<string, number>;
  /** Failures without an answer, and answers other than 204 and 503. */
  readonly errors: number;
  readonly peakRssBytes: readonly number[];
}

async function rssOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** `connections` writers PUT `valueBytes` values at quorum through `url` for `seconds`; `peak` is raised to each node's RSS. */
async function writeLoad(url: string, valueBytes: number, seconds: number, nodes: readonly NodeProcess[], peak = nodes.map(() => 0)): Promise<Run> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const value = Buffer.alloc(valueBytes, 0x61);
  const latencies: number[] = [];
  const shedCodes: Record<string, number> = {};
  let answered = 0;
  let shed = 0;
  let errors = 0;
  const sampler = setInterval(() => {
    nodes.forEach((n, i) => void rssOf(n.child.pid).then((rss) => (peak[i] = Math.max(peak[i]!, rss))));
  }, 100);
  const endMs = performance.now() + seconds * 1000;
  const put = (key: number): Promise<void> =>
    new Promise((resolve) => {
      const startMs = performance.now();
      const req = httpRequest(`${url}/v1/kv/load/${key}?consistency=quorum`, {
        method: 'PUT',
        agent,
        headers: { 'content-type': 'application/octet-stream', 'content-length': value.length },
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => undefined);
        res.on('end', () => {
          answered += 1;
          if (res.statusCode === 204) latencies.push(performance.now() - startMs);
          else if (res.statusCode === 503) {
            shed += 1;
            const code = /"code":"([A-Z_]+)"/.exec(Buffer.concat(chunks).toString())?.[1] ?? '?';
            shedCodes[code] = (shedCodes[code] ?? 0) + 1;
          } else errors += 1;
          resolve();
        });
      });
      req.on('error', () => {
        errors += 1;
        resolve();
      });
      req.end(value);
    });
  const writer = async (): Promise<void> => {
    while (performance.now() < endMs) await put(Math.floor(Math.random() * keyCount));
  };
  const startedMs = performance.now();
  try {
    await Promise.all(Array.from({ length: connections }, writer));
  } finally {
    clearInterval(sampler);
    agent.destroy();
  }
  const elapsedS = (performance.now() - startedMs) / 1000;
  latencies.sort((a, b) => a - b);
  const ok = latencies.length;
  return {
    requestsPerS: ok / elapsedS,
    mibPerS: (ok * valueBytes) / MiB / elapsedS,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    shedShare: shed / Math.max(1, answered + errors),
    shedCodes,
    errors,
    peakRssBytes: peak,
  };
}

const sizeName = (bytes: number): string => (bytes >= MiB ? `${bytes / MiB} MiB` : bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`);

/** One measurement of `size` on a fresh 3-node cluster. */
async function measureOnFreshCluster(size: number): Promise<Run> {
  const tmp = await mkdtemp(join(tmpdir(), 'hearsay-bench-load-'));
  let nodes: NodeProcess[] = [];
  try {
    nodes = startCluster(tmp, await freePorts(6));
    await waitReady(nodes, 3);
    const coordinator = nodes[0]!;
    const peak = nodes.map(() => 0);
    if (warmupS > 0) await writeLoad(coordinator.url, size, warmupS, nodes, peak);
    return await writeLoad(coordinator.url, size, durationS, nodes, peak);
  } finally {
    await Promise.all(nodes.map((node) => stopProcess(node.child)));
    await rm(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(
    `load: ${connections} writers, PUT at quorum through c1 of a fresh 3-node cluster per size (RF 3, default limits), keys at random from ${keyCount}, ${warmupS} s warm-up + ${durationS} s, ${rounds} rounds`,
  );
  const runs = new Map<number, Run[]>(SIZES.map((s) => [s, []]));
  for (let round = 0; round < rounds; round++) {
    for (const size of round % 2 === 0 ? SIZES : [...SIZES].reverse()) {
      const run = await measureOnFreshCluster(size);
      runs.get(size)!.push(run);
      console.log(
        `round ${round + 1} ${sizeName(size)}: ${fmt(run.requestsPerS)} req/s, ${fmt(run.mibPerS, 1)} MiB/s, p50 ${fmt(run.p50Ms, 1)} ms, p99 ${fmt(run.p99Ms, 1)} ms, ` +
          `503 ${fmt(run.shedShare * 100, 1)}% ${JSON.stringify(run.shedCodes)}, errors ${run.errors}, peak RSS ${run.peakRssBytes.map((b) => fmt(b / MiB)).join(' / ')} MiB`,
      );
    }
  }
  const base = runs.get(100)!;
  console.log('');
  console.log(machineLine());
  console.log('');
  console.log('| value | req/s | MiB/s | ÷ 100 B (req/s) | p50 / p99 ms | 503 | errors | peak RSS c1 / c2 / c3 MiB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const size of SIZES) {
    const rs = runs.get(size)!;
    const ratio = median(rs.map((r, i) => r.requestsPerS / (base[i]?.requestsPerS ?? NaN)));
    const peak = [0, 1, 2].map((i) => Math.max(...rs.map((r) => r.peakRssBytes[i] ?? 0)));
    console.log(
      `| ${sizeName(size)}${size === 100 ? ' (baseline)' : ''} | ${fmt(median(rs.map((r) => r.requestsPerS)))} | ${fmt(median(rs.map((r) => r.mibPerS)), 1)} | ${fmt(ratio, 2)}× | ` +
        `${fmt(median(rs.map((r) => r.p50Ms)), 1)} / ${fmt(median(rs.map((r) => r.p99Ms)), 1)} | ${fmt(median(rs.map((r) => r.shedShare)) * 100, 1)}% | ` +
        `${rs.reduce((n, r) => n + r.errors, 0)} | ${peak.map((b) => fmt(b / MiB)).join(' / ')} |`,
    );
  }
}

await main();
