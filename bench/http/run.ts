/**
 * HTTP throughput of a Hearsay node beside a bare Hono route, same run, same
 * machine (issue 5): 50 connections, 100-byte values, 10,000 keys. Beside
 * them a third server, the same node secured (issue 14): HTTPS with a
 * certificate openssl makes for the run, and an auth file whose admin token
 * every request carries; its figures over the plain node's are the cost of
 * security. Every server is a child process; the load generator is wrk when
 * installed (`apt-get install -y wrk`), else autocannon in this process.
 *
 * The machine is shared and has 2 cores, so each figure is the median of
 * `--rounds` runs that alternate node and baseline.
 *
 *   pnpm bench:http [--duration-s 3] [--warmup-s 1] [--rounds 5] [--connections 50] [--keys 10000] [--value-bytes 100] [--tool wrk|autocannon]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createToken } from '@hearsay/http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLoadArgs } from '../lib/args.ts';
import { medianOf, preload, runLoad, type Measurement, type Op } from '../lib/load.ts';
import { cpuSecondsOf, startServer, stopProcess, waitForQuietThreads, type Server } from '../lib/process.ts';
import { fmt, machineLine, median } from '../lib/stats.ts';


const load = parseLoadArgs({ rounds: 5 });
const { durationS, warmupS, rounds, connections, keyCount, valueBytes, tool } = load;

interface CostedMeasurement extends Measurement {
  /** CPU time (user + system, all threads) the server spent per request; NaN where /proc is missing. */
  readonly cpuUsPerRequest: number;
}

/**
 * One measured run. It starts once every server's background threads are
 * idle: a node's LevelDB compacts on its own thread after a PUT run, and on
 * 2 cores that would otherwise take CPU from whoever runs next.
 */
async function measure(server: Server, op: Op, scriptDir: string, all: readonly Server[], headers: Readonly<Record<string, string>>): Promise<CostedMeasurement> {
  for (const other of all) await waitForQuietThreads(other.child.pid);
  const run = (seconds: number): Promise<Measurement> => runLoad(tool, server.url, op, seconds, join(scriptDir, `${op}.lua`), { ...load, headers, query: '' });
  if (warmupS > 0) await run(warmupS);
  const cpuBefore = await cpuSecondsOf(server.child.pid);
  const measurement = await run(durationS);
  const cpuAfter = await cpuSecondsOf(server.child.pid);
  const requests = measurement.requestsPerS * durationS;
  const cpuUsPerRequest = cpuBefore === undefined || cpuAfter === undefined ? NaN : ((cpuAfter - cpuBefore) * 1e6) / requests;
  return { ...measurement, cpuUsPerRequest };
}

/** Each figure's median over the runs (CPU cost too); errors summed. */
function costedMedianOf(runs: readonly CostedMeasurement[]): CostedMeasurement {
  return { ...medianOf(runs), cpuUsPerRequest: median(runs.map((run) => run.cpuUsPerRequest)) };
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'hearsay-bench-http-'));
  const servers: Server[] = [];
  try {
    const node = await startServer('hearsay node', [
      'packages/cli/src/bin.ts', 'start', '--data-dir', join(tmp, 'data'), '--http-port', '0', '--gossip-port', '0', '--log-level', 'info',
    ]);
    servers.push(node);
    const bare = await startServer('bare Hono route', ['bench/http/bare-server.ts', '0']);
    servers.push(bare);
    // The secured node: a self-signed certificate for 127.0.0.1 (the load tools do not check it) and one admin token.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tmp, 'tls.key'), '-out', join(tmp, 'tls.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    const admin = createToken({ scopes: ['admin'], id: 'bench' });
    await writeFile(join(tmp, 'tokens'), `${admin.line}\n`, { mode: 0o600 });
    const secure = await startServer('secured node (TLS + token)', [
      'packages/cli/src/bin.ts', 'start', '--data-dir', join(tmp, 'secure-data'), '--http-port', '0', '--gossip-port', '0', '--log-level', 'info',
      '--tls-cert', join(tmp, 'tls.pem'), '--tls-key', join(tmp, 'tls.key'), '--auth-file', join(tmp, 'tokens'),
    ]);
    servers.push(secure);
    const headersOf = (server: Server): Readonly<Record<string, string>> => (server === secure ? { authorization: `Bearer ${admin.token}` } : {});
    const preloadStartMs = Date.now();
    await preload(node.url, load);
    await preload(secure.url, { ...load, headers: headersOf(secure) });
    console.log(`preloaded ${keyCount} keys of ${valueBytes} bytes in each node in ${Date.now() - preloadStartMs} ms`);
    console.log(`load: ${tool}, ${connections} connections, ${warmupS} s warm-up + ${durationS} s per run, ${rounds} rounds, keys drawn at random from ${keyCount}`);

    const rows: string[] = [];
    const securityRows: string[] = [];
    const aims: Record<Op, number> = { GET: 0.8, PUT: 0.7 };
    for (const op of ['GET', 'PUT'] as const) {
      const runs = new Map<Server, CostedMeasurement[]>([[node, []], [bare, []], [secure, []]]);
      const order = [node, secure, bare];
      for (let round = 0; round < rounds; round += 1) {
        // Rotate who goes first, so a drift in the machine's load hits all alike.
        for (const server of [...order.slice(round % 3), ...order.slice(0, round % 3)]) {
          const measurement = await measure(server, op, tmp, servers, headersOf(server));
          runs.get(server)?.push(measurement);
          console.log(
            `${op} round ${round + 1} ${server.name}: ${fmt(measurement.requestsPerS)} req/s, p50 ${fmt(measurement.p50Ms, 2)} ms, ` +
              `p99 ${fmt(measurement.p99Ms, 2)} ms, ${fmt(measurement.cpuUsPerRequest)} CPU µs/request`,
          );
        }
      }
      const ours = costedMedianOf(runs.get(node) ?? []);
      const base = costedMedianOf(runs.get(bare) ?? []);
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
      const secureRuns = runs.get(secure) ?? [];
      const guarded = costedMedianOf(secureRuns);
      const securityRatio = median(secureRuns.map((run, round) => run.requestsPerS / (nodeRuns[round]?.requestsPerS ?? NaN)));
      securityRows.push(
        `| ${op} | ${fmt(ours.requestsPerS)} | ${fmt(ours.p50Ms, 2)} / ${fmt(ours.p99Ms, 2)} | ${fmt(guarded.requestsPerS)} | ${fmt(guarded.p50Ms, 2)} / ${fmt(guarded.p99Ms, 2)} | **${fmt(securityRatio, 2)}×** | ${fmt(ours.cpuUsPerRequest)} / ${fmt(guarded.cpuUsPerRequest)} | ${ours.errors} / ${guarded.errors} |`,
      );
      console.log(`${op}: secured ${fmt(guarded.requestsPerS)} req/s, plain ${fmt(ours.requestsPerS)} req/s, median paired ratio ${fmt(securityRatio, 2)}`);
    }
    console.log('');
    console.log(machineLine());
    console.log('');
    console.log('| op | node req/s | node p50 / p99 ms | bare req/s | bare p50 / p99 ms | node / bare req/s (median of paired rounds) | server CPU µs/req node / bare (bare ÷ node) | errors node / bare |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
    console.log('');
    console.log('The cost of security (HTTPS + a bearer token on every request), same node, same run:');
    console.log('');
    console.log('| op | plain req/s | plain p50 / p99 ms | TLS + token req/s | TLS + token p50 / p99 ms | secured / plain req/s (median of paired rounds) | server CPU µs/req plain / secured | errors plain / secured |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of securityRows) console.log(row);
  } finally {
    await Promise.all(servers.map((server) => stopProcess(server.child)));
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
