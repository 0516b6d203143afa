/**
 * Where a node's CPU goes under HTTP load, thread by thread: starts
 * `hearsay start` as `bench/http/run.ts` does, preloads the same 10,000 keys,
 * then runs wrk rounds of GET or PUT and prints, for each round, the req/s and
 * the CPU µs per request of the main thread and of every other thread that
 * worked (libuv's pool threads run LevelDB's reads and writes; V8's helper
 * threads run parallel scavenges and concurrent marking). Linux only (/proc).
 *
 *   npx tsx bench/http/threads.ts [--op PUT|GET] [--rounds 4] [--duration-s 4] [--node-flag <flag>]...
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { preload, runLoad, type Op } from '../lib/load.ts';
import { startServer, stopProcess, threadCpuSecondsOf } from '../lib/process.ts';
import { fmt } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    op: { type: 'string', default: 'PUT' },
    rounds: { type: 'string', default: '4' },
    'duration-s': { type: 'string', default: '4' },
    'node-flag': { type: 'string', multiple: true, default: [] },
  },
});
const op = values.op as Op;
if (op !== 'GET' && op !== 'PUT') throw new Error(`--op must be GET or PUT, not ${values.op}`);
const rounds = Number(values.rounds);
const durationS = Number(values['duration-s']);
const load = { connections: 50, keyCount: 10_000, valueBytes: 100 };

const tmp = await mkdtemp(join(tmpdir(), 'hearsay-bench-threads-'));
const node = await startServer(
  'hearsay node',
  ['packages/cli/src/bin.ts', 'start', '--data-dir', join(tmp, 'data'), '--http-port', '0', '--log-level', 'info'],
  values['node-flag'],
);
try {
  await preload(node.url, load);
  const pid = node.child.pid;
  for (let round = 1; round <= rounds; round += 1) {
    const before = await threadCpuSecondsOf(pid);
    const measurement = await runLoad('wrk', node.url, op, durationS, join(tmp, `${op}.lua`), { ...load, query: '' });
    const after = await threadCpuSecondsOf(pid);
    const requests = measurement.requestsPerS * durationS;
    const usPerRequest = (seconds: number): string => fmt((seconds * 1e6) / requests, 1);
    let total = 0;
    let main = 0;
    const others: number[] = [];
    for (const [tid, seconds] of after) {
      const used = seconds - (before.get(tid) ?? 0);
      total += used;
      if (tid === pid) main = used;
      else if (used > 0) others.push(used);
    }
    others.sort((a, b) => b - a);
    console.log(
      `${op} round ${round}: ${fmt(measurement.requestsPerS)} req/s; CPU µs per request: all threads ${usPerRequest(total)}, ` +
        `main ${usPerRequest(main)}, others ${others.map(usPerRequest).join(' ')}`,
    );
  }
} finally {
  await stopProcess(node.child);
  await rm(tmp, { recursive: true, force: true });
}
