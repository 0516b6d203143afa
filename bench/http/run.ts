/**
 * HTTP throughput of a Hearsay node beside a bare Hono route, same run, same
 * machine (issue 5): 50 connections, 100-byte values, 10,000 keys. Both
 * servers are child processes; the load generator is wrk when installed
 * (`apt-get install -y wrk`), else autocannon in this process.
 *
 * The machine is shared and has 2 cores, so each figure is the median of
 * `--rounds` runs that alternate node and baseline.
 *
 *   pnpm bench:http [--duration-s 3] [--warmup-s 1] [--rounds 5] [--connections 50] [--keys 10000] [--value-bytes 100] [--tool wrk|autocannon]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const ROOT = new URL('../..', import.meta.url).pathname;
const START_DEADLINE_MS = 30_000;

const { values: args } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '3' },
    'warmup-s': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
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

interface Measurement {
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Connection errors, timeouts and non-2xx answers. */
  readonly errors: number;
  /** CPU time (user + system, all threads) the server spent per request; NaN where /proc is missing. */
  readonly cpuUsPerRequest: number;
}

interface Server {
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

/** Spawns a server that prints a JSON line with its `http` URL, and waits for it. */
async function startServer(name: string, args: string[]): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${START_DEADLINE_MS} ms:\n${output}`)), START_DEADLINE_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.startsWith('{')) continue;
        const http = (JSON.parse(line) as { http?: unknown }).http;
        if (typeof http === 'string') {
          clearTimeout(timer);
          resolve(http);
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${output}`)));
  });
  child.stdout?.resume();
  return { name, url, child };
}

async function stopServer(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

const keyPath = (i: number): string => `/v1/kv/bench/${i}`;

/** PUTs every key once, over keep-alive connections (node:http: cheaper per request than fetch). */
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

function wrkScript(op: Op): string {
  const body = 'v'.repeat(valueBytes);
  const request =
    op === 'GET'
      ? `return wrk.format("GET", "/v1/kv/bench/" .. math.random(0, ${keyCount - 1}))`
      : `return wrk.format("PUT", "/v1/kv/bench/" .. math.random(0, ${keyCount - 1}), { ["Content-Type"] = "application/octet-stream" }, "${body}")`;
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

async function runWrk(url: string, op: Op, seconds: number, scriptDir: string): Promise<Measurement> {
  const script = join(scriptDir, `${op}.lua`);
  await writeFile(script, wrkScript(op));
  // One wrk thread: the server under test needs the other core.
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk exited with ${code}: ${stdout}`))));
  });
  const line = output.split('\n').find((text) => text.startsWith('{"requests"'));
  if (line === undefined) throw new Error(`no result line from wrk:\n${output}`);
  const result = JSON.parse(line) as { requests: number; durationUs: number; p50Us: number; p99Us: number; errors: number };
  return {
    requestsPerS: result.requests / (result.durationUs / 1e6),
    p50Ms: result.p50Us / 1000,
    p99Ms: result.p99Us / 1000,
    errors: result.errors,
    cpuUsPerRequest: NaN,
  };
}

async function runAutocannon(url: string, op: Op, seconds: number): Promise<Measurement> {
  const body = Buffer.alloc(valueBytes, 0x76);
  let i = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (request) => {
          // A cheap spread over the keys; autocannon calls this for every request.
          i = (i + 7919) % keyCount;
          return op === 'GET'
            ? { ...request, method: 'GET', path: keyPath(i) }
            : { ...request, method: 'PUT', path: keyPath(i), body, headers: { 'content-type': 'application/octet-stream' } };
        },
      },
    ],
  });
  return {
    requestsPerS: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    cpuUsPerRequest: NaN,
  };
}

/**
 * CPU seconds (user + system, every thread) a process has used, from
 * /proc/<pid>/stat; undefined off Linux. Unlike throughput, the CPU cost per
 * request barely moves with the load other programs put on the machine.
 */
async function cpuSecondsOf(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux we run on. */
const CLOCK_TICKS_PER_S = 100;

async function measure(server: Server, op: Op, scriptDir: string): Promise<Measurement> {
  const run = (seconds: number): Promise<Measurement> => (tool === 'wrk' ? runWrk(server.url, op, seconds, scriptDir) : runAutocannon(server.url, op, seconds));
  if (warmupS > 0) await run(warmupS);
  const cpuBefore = await cpuSecondsOf(server.child.pid);
  const measurement = await run(durationS);
  const cpuAfter = await cpuSecondsOf(server.child.pid);
  const requests = measurement.requestsPerS * durationS;
  const cpuUsPerRequest = cpuBefore === undefined || cpuAfter === undefined ? NaN : ((cpuAfter - cpuBefore) * 1e6) / requests;
  return { ...measurement, cpuUsPerRequest };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** Each figure's median over the runs; errors summed. */
function medianOf(runs: readonly Measurement[]): Measurement {
  return {
    requestsPerS: median(runs.map((run) => run.requestsPerS)),
    p50Ms: median(runs.map((run) => run.p50Ms)),
    p99Ms: median(runs.map((run) => run.p99Ms)),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    cpuUsPerRequest: median(runs.map((run) => run.cpuUsPerRequest)),
  };
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'hearsay-bench-http-'));
  const servers: Server[] = [];
  try {
    const node = await startServer('hearsay node', [
      'packages/cli/src/bin.ts', 'start', '--data-dir', join(tmp, 'data'), '--http-port', '0', '--log-level', 'info',
    ]);
    servers.push(node);
    const bare = await startServer('bare Hono route', ['bench/http/bare-server.ts', '0']);
    servers.push(bare);
    const preloadStartMs = Date.now();
    await preload(node.url);
    console.log(`preloaded ${keyCount} keys of ${valueBytes} bytes in ${Date.now() - preloadStartMs} ms`);
    console.log(`load: ${tool}, ${connections} connections, ${warmupS} s warm-up + ${durationS} s per run, ${rounds} rounds, keys drawn at random from ${keyCount}`);

    const rows: string[] = [];
    const aims: Record<Op, number> = { GET: 0.8, PUT: 0.7 };
    for (const op of ['GET', 'PUT'] as const) {
      const runs = new Map<Server, Measurement[]>([[node, []], [bare, []]]);
      for (let round = 0; round < rounds; round += 1) {
        // Alternate who goes first, so a drift in the machine's load hits both alike.
        for (const server of round % 2 === 0 ? [node, bare] : [bare, node]) {
          const measurement = await measure(server, op, tmp);
          runs.get(server)?.push(measurement);
          console.log(
            `${op} round ${round + 1} ${server.name}: ${fmt(measurement.requestsPerS)} req/s, p50 ${fmt(measurement.p50Ms, 2)} ms, ` +
              `p99 ${fmt(measurement.p99Ms, 2)} ms, ${fmt(measurement.cpuUsPerRequest)} CPU µs/request`,
          );
        }
      }
      const ours = medianOf(runs.get(node) ?? []);
      const base = medianOf(runs.get(bare) ?? []);
      // Each round's node and bare runs are neighbours in time; the median of
      // their ratios is steadier than the ratio of the medians.
      const nodeRuns = runs.get(node) ?? [];
      const bareRuns = runs.get(bare) ?? [];
      const ratio = median(nodeRuns.map((run, round) => run.requestsPerS / (bareRuns[round]?.requestsPerS ?? NaN)));
      const costRatio = base.cpuUsPerRequest / ours.cpuUsPerRequest;
      rows.push(
        `| ${op} | ${fmt(ours.requestsPerS)} | ${fmt(ours.p50Ms, 2)} / ${fmt(ours.p99Ms, 2)} | ${fmt(base.requestsPerS)} | ${fmt(base.p50Ms, 2)} / ${fmt(base.p99Ms, 2)} | **${fmt(ratio, 2)}×** (aim ≥ ${aims[op]}×) | ${fmt(ours.cpuUsPerRequest)} / ${fmt(base.cpuUsPerRequest)} (${fmt(costRatio, 2)}×) | ${ours.errors} / ${base.errors} |`,
      );
      console.log(`${op}: node ${fmt(ours.requestsPerS)} req/s, bare ${fmt(base.requestsPerS)} req/s (medians of ${rounds}), median paired ratio ${fmt(ratio, 2)}`);
    }
    const cpu = cpus();
    console.log('');
    console.log(`machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${fmt(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`);
    console.log('');
    console.log('| op | node req/s | node p50 / p99 ms | bare req/s | bare p50 / p99 ms | node / bare req/s (median of paired rounds) | server CPU µs/req node / bare (bare ÷ node) | errors node / bare |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
  } finally {
    await Promise.all(servers.map(stopServer));
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
