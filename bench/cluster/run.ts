/**
 * Throughput of a 3-node cluster on loopback beside a single node, same run,
 * same machine (issue 6): PUT and GET at consistency `one` and `quorum`,
 * 50 connections to one coordinator, 100-byte values, 10,000 keys, RF 3.
 * Every node is a `hearsay start` child process; the load generator is wrk
 * when installed (`apt-get install -y wrk`), else autocannon in this process.
 *
 * The single node is a cluster of one (the same code path minus replicas).
 * The machine is shared and has 2 cores: the three nodes and the load
 * generator share them, so the cluster pays for three replicas' work with the
 * same CPU the single node has to itself. Each figure is the median of
 * `--rounds` runs that alternate single node and cluster.
 *
 *   pnpm bench:cluster [--duration-s 3] [--warmup-s 1] [--rounds 3] [--connections 50] [--keys 10000] [--value-bytes 100] [--tool wrk|autocannon]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLoadArgs } from '../lib/args.ts';
import { freePorts, startCluster, startNode, waitReady, type NodeProcess } from '../lib/cluster.ts';
import { medianOf, preload, runLoad, type Measurement, type Op } from '../lib/load.ts';
import { stopProcess } from '../lib/process.ts';
import { fmt, machineLine, median } from '../lib/stats.ts';

const load = parseLoadArgs({ rounds: 3 });
const { durationS, warmupS, rounds, connections, keyCount, valueBytes, tool } = load;

type Consistency = 'one' | 'quorum';

async function measure(url: string, op: Op, consistency: Consistency, scriptDir: string): Promise<Measurement> {
  const run = (seconds: number): Promise<Measurement> =>
    runLoad(tool, url, op, seconds, join(scriptDir, `${op}-${consistency}.lua`), { ...load, query: `?consistency=${consistency}` });
  if (warmupS > 0) await run(warmupS);
  return run(durationS);
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'hearsay-bench-cluster-'));
  const nodes: NodeProcess[] = [];
  try {
    const ports = await freePorts(8);
    const single = startNode('single', join(tmp, 'single'), ports[0]!, ports[1]!, []);
    nodes.push(single);
    const cluster = startCluster(tmp, ports.slice(2));
    nodes.push(...cluster);
    await waitReady([single], 1);
    await waitReady(cluster, 3);
    const coordinator = cluster[0]!;
    const preloadStartMs = Date.now();
    await preload(single.url, load);
    await preload(coordinator.url, load);
    console.log(`preloaded ${keyCount} keys of ${valueBytes} bytes into each in ${Date.now() - preloadStartMs} ms`);
    console.log(
      `load: ${tool}, ${connections} connections to one node (the cluster's c1 coordinates), ${warmupS} s warm-up + ${durationS} s per run, ${rounds} rounds, keys at random from ${keyCount}; RF 3`,
    );

    const rows: string[] = [];
    for (const op of ['PUT', 'GET'] as const) {
      const singleRuns: Measurement[] = [];
      const clusterRuns = new Map<Consistency, Measurement[]>([['one', []], ['quorum', []]]);
      for (let round = 0; round < rounds; round += 1) {
        const cases: Array<['single' | Consistency, () => Promise<Measurement>]> = [
          ['single', () => measure(single.url, op, 'quorum', tmp)],
          ['one', () => measure(coordinator.url, op, 'one', tmp)],
          ['quorum', () => measure(coordinator.url, op, 'quorum', tmp)],
        ];
        // Alternate the order, so a drift in the machine's load hits every case alike.
        for (const [name, run] of round % 2 === 0 ? cases : [...cases].reverse()) {
          const m = await run();
          if (name === 'single') singleRuns.push(m);
          else clusterRuns.get(name)?.push(m);
          console.log(`${op} round ${round + 1} ${name === 'single' ? 'single node' : `3 nodes at ${name}`}: ${fmt(m.requestsPerS)} req/s, p50 ${fmt(m.p50Ms, 2)} ms, p99 ${fmt(m.p99Ms, 2)} ms, errors ${m.errors}`);
        }
      }
      const base = medianOf(singleRuns);
      rows.push(`| ${op} | single node | ${fmt(base.requestsPerS)} | ${fmt(base.p50Ms, 2)} / ${fmt(base.p99Ms, 2)} | 1.00× | ${base.errors} |`);
      for (const consistency of ['one', 'quorum'] as const) {
        const runs = clusterRuns.get(consistency) ?? [];
        const ours = medianOf(runs);
        const ratio = median(runs.map((r, i) => r.requestsPerS / (singleRuns[i]?.requestsPerS ?? NaN)));
        rows.push(`| ${op} | 3 nodes, \`${consistency}\` | ${fmt(ours.requestsPerS)} | ${fmt(ours.p50Ms, 2)} / ${fmt(ours.p99Ms, 2)} | ${fmt(ratio, 2)}× | ${ours.errors} |`);
      }
    }
    console.log('');
    console.log(machineLine());
    console.log('');
    console.log('| op | setup | req/s | p50 / p99 ms | ÷ single node (median of paired rounds) | errors |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
  } finally {
    await Promise.all(nodes.map((node) => stopProcess(node.child)));
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
