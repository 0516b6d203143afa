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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLoadArgs } from '../lib/args.ts';
import { medianOf, preload, runLoad, type Measurement, type Op } from '../lib/load.ts';
import { stopProcess } from '../lib/process.ts';
import { fmt, machineLine, median } from '../lib/stats.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'packages/cli/src/bin.ts');
const START_DEADLINE_MS = 60_000;

const load = parseLoadArgs({ rounds: 3 });
const { durationS, warmupS, rounds, connections, keyCount, valueBytes, tool } = load;

type Consistency = 'one' | 'quorum';

interface NodeProcess {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
}

/** `count` distinct ports free for TCP and UDP, all held until every one is picked. */
async function freePorts(count: number): Promise<number[]> {
  const release: Array<() => void> = [];
  const ports: number[] = [];
  try {
    while (ports.length < count) {
      const server = createServer();
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
      });
      release.push(() => server.close());
      const socket = createSocket('udp4');
      const bound = await new Promise<boolean>((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind(port, '127.0.0.1', () => resolve(true));
      });
      if (!bound) continue;
      release.push(() => socket.close());
      ports.push(port);
    }
    return ports;
  } finally {
    for (const r of release) r();
  }
}

function startNode(name: string, dataDir: string, httpPort: number, gossipPort: number, seeds: string[]): NodeProcess {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@hearsay/source', '--import', 'tsx', BIN, 'start',
      '--node-id', name,
      '--data-dir', dataDir,
      '--http-port', String(httpPort),
      '--gossip-port', String(gossipPort),
      '--seeds', seeds.join(','),
      '--log-level', 'warn',
      // Background repair would compete for the 2 cores; this bench measures the request path.
      '--repair-interval-ms', '0',
    ],
    { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  return { name, url: `http://127.0.0.1:${httpPort}`, child };
}

/** Waits until every node serves and sees `size` members alive. */
async function waitReady(nodes: readonly NodeProcess[], size: number): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (const node of nodes) {
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${node.name} not ready within ${START_DEADLINE_MS} ms`);
      const health = await fetch(`${node.url}/v1/health`).catch(() => undefined);
      if (health?.status === 200) {
        const view = (await (await fetch(`${node.url}/v1/cluster`)).json()) as { members: Array<{ state: string }> };
        if (view.members.filter((m) => m.state === 'alive').length === size) break;
      } else {
        await health?.body?.cancel();
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

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
    const gossip = [ports[3]!, ports[5]!, ports[7]!];
    const cluster = [0, 1, 2].map((i) =>
      startNode(`c${i + 1}`, join(tmp, `c${i + 1}`), ports[2 + 2 * i]!, gossip[i]!, gossip.filter((_, j) => j !== i).map((p) => `127.0.0.1:${p}`)),
    );
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
