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
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'packages/cli/src/bin.ts');
const START_DEADLINE_MS = 60_000;

const { values: args } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '3' },
    'warmup-s': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    keys: { type: 'string', default: '10000' },
    'value-bytes': { type: 'string', default: '100' },
    tool: { type: 'string' },
  },
});
const durationS = Number(args['duration-s']);
const warmupS = Number(args['warmup-s']);
const rounds = Number(args.rounds);
const connections = Number(args.connections);
const keyCount = Number(args.keys);
const valueBytes = Number(args['value-bytes']);
const tool = args.tool ?? (hasWrk() ? 'wrk' : 'autocannon');
if (tool !== 'wrk' && tool !== 'autocannon') throw new Error(`--tool must be wrk or autocannon, not ${tool}`);

type Op = 'GET' | 'PUT';
type Consistency = 'one' | 'quorum';

interface Measurement {
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Connection errors, timeouts and non-2xx answers. */
  readonly errors: number;
}

interface NodeProcess {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version exits 1 after printing its version.
    return (error as { status?: number }).status === 1;
  }
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
      '--import', 'tsx', BIN, 'start',
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

async function stopNode(node: NodeProcess): Promise<void> {
  if (node.child.exitCode !== null) return;
  const exited = new Promise((resolve) => node.child.once('exit', resolve));
  node.child.kill('SIGTERM');
  await exited;
}

const keyPath = (i: number): string => `/v1/kv/bench/${i}`;

/** PUTs every key once at quorum, over keep-alive connections. */
async function preload(url: string): Promise<void> {
  const value = Buffer.alloc(valueBytes, 0x62);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const put = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const request = httpRequest(url + keyPath(i), {
        method: 'PUT',
        agent,
        headers: { 'content-type': 'application/octet-stream', 'content-length': value.length },
      });
      request.on('response', (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 204 ? resolve() : reject(new Error(`preload PUT ${i}: ${response.statusCode}`))));
      });
      request.on('error', reject);
      request.end(value);
    });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keyCount) await put(next++);
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    agent.destroy();
  }
}

function wrkScript(op: Op, consistency: Consistency): string {
  const body = 'v'.repeat(valueBytes);
  const path = `"/v1/kv/bench/" .. math.random(0, ${keyCount - 1}) .. "?consistency=${consistency}"`;
  const request =
    op === 'GET'
      ? `return wrk.format("GET", ${path})`
      : `return wrk.format("PUT", ${path}, { ["Content-Type"] = "application/octet-stream" }, "${body}")`;
  return `
math.randomseed(42)
request = function()
  ${request}
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
`;
}

async function runWrk(url: string, op: Op, consistency: Consistency, seconds: number, scriptDir: string): Promise<Measurement> {
  const script = join(scriptDir, `${op}-${consistency}.lua`);
  await writeFile(script, wrkScript(op, consistency));
  // One wrk thread: the nodes need the cores.
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk exited with ${code}: ${stdout}`))));
  });
  const line = output.split('\n').find((text) => text.startsWith('{"requests"'));
  if (line === undefined) throw new Error(`no result line from wrk:\n${output}`);
  const result = JSON.parse(line) as { requests: number; durationUs: number; p50Us: number; p99Us: number; errors: number };
  return { requestsPerS: result.requests / (result.durationUs / 1e6), p50Ms: result.p50Us / 1000, p99Ms: result.p99Us / 1000, errors: result.errors };
}

async function runAutocannon(url: string, op: Op, consistency: Consistency, seconds: number): Promise<Measurement> {
  const body = Buffer.alloc(valueBytes, 0x76);
  let i = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (request) => {
          i = (i + 7919) % keyCount;
          const path = `${keyPath(i)}?consistency=${consistency}`;
          return op === 'GET'
            ? { ...request, method: 'GET', path }
            : { ...request, method: 'PUT', path, body, headers: { 'content-type': 'application/octet-stream' } };
        },
      },
    ],
  });
  return { requestsPerS: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99, errors: result.errors + result.timeouts + result.non2xx };
}

async function measure(url: string, op: Op, consistency: Consistency, scriptDir: string): Promise<Measurement> {
  const run = (seconds: number): Promise<Measurement> =>
    tool === 'wrk' ? runWrk(url, op, consistency, seconds, scriptDir) : runAutocannon(url, op, consistency, seconds);
  if (warmupS > 0) await run(warmupS);
  return run(durationS);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

function medianOf(runs: readonly Measurement[]): Measurement {
  return {
    requestsPerS: median(runs.map((r) => r.requestsPerS)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

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
    await preload(single.url);
    await preload(coordinator.url);
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
    const cpu = cpus();
    console.log('');
    console.log(`machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${fmt(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`);
    console.log('');
    console.log('| op | setup | req/s | p50 / p99 ms | ÷ single node (median of paired rounds) | errors |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
  } finally {
    await Promise.all(nodes.map(stopNode));
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
