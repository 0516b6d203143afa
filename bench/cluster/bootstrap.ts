/**
 * Bootstrap of a node into a 3-node cluster holding `--keys` keys of
 * `--value-bytes` (issue 16; default 1,000,000 × 100 B), RF 3:
 *
 *  - time to ready: from spawning `hearsay start --seeds …` of the 4th node
 *    to it serving with the join committed (every node reports no change in
 *    progress), and the bytes it streamed (its
 *    `hearsay_topology_stream_bytes_total`) per second of that;
 *  - beside it, same run, same machine: a raw classic-level copy of one
 *    replica's whole database (iterate every entry, write it to a fresh
 *    database in batches) — what moving these bytes costs with no protocol;
 *  - the foreground p50 / p99 of quorum GETs and PUTs (closed loop,
 *    `--connections`) through the three old nodes before and during it.
 *
 * The three nodes are formed empty, stopped, loaded directly into their
 * stores (the same records on each: identical replicas, as after a repair),
 * and started again; loading 1 M keys over HTTP would take longer than the
 * rest together.
 *
 *   pnpm bench:bootstrap [--keys 1000000] [--value-bytes 100] [--connections 8] [--baseline-s 10] [--stream-rate-limit-bytes-per-sec 0]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClassicLevel } from 'classic-level';
import { openStore, type StoredRecord } from '@hearsay/storage';
import { freePorts, startNode, waitReady, type NodeProcess } from '../lib/cluster.ts';
import { stopProcess } from '../lib/process.ts';
import { fmt, machineLine } from '../lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'value-bytes': { type: 'string', default: '100' },
    connections: { type: 'string', default: '8' },
    'baseline-s': { type: 'string', default: '10' },
    'stream-rate-limit-bytes-per-sec': { type: 'string', default: '0' },
  },
});
const KEYS = Number(args.keys);
const VALUE_BYTES = Number(args['value-bytes']);
const CONNECTIONS = Number(args.connections);
const BASELINE_S = Number(args['baseline-s']);
const STREAM_RATE = args['stream-rate-limit-bytes-per-sec'];
const BATCH = 4096;
const READY_DEADLINE_MS = 30 * 60_000;
/** Fast membership steps and gossip; background repair off (lib/cluster.ts): the bench measures the bootstrap. */
const FLAGS = ['--ring-sync-interval-ms', '200', '--gossip-interval-ms', '100', '--gossip-probe-interval-ms', '500', '--stream-rate-limit-bytes-per-sec', STREAM_RATE];

const keyOf = (i: number): string => `bench/${i}`;
const MiB = 1024 * 1024;

async function loadStore(dir: string, nodeId: string): Promise<void> {
  const store = await openStore({ location: join(dir, 'store'), nodeId });
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  const baseMs = Date.now() - 60_000;
  for (let i = 0; i < KEYS; i += BATCH) {
    const batch: StoredRecord[] = [];
    for (let j = i; j < Math.min(KEYS, i + BATCH); j++) {
      batch.push({ key: keyOf(j), value, version: { ms: baseMs + (j % 1000), counter: 0, node: 'loader' }, tombstone: false });
    }
    await store.applyMany(batch);
  }
  await store.close();
}

/** Copies every entry of one LevelDB into a fresh one, in batches: the raw cost of moving the replica's bytes. */
async function rawCopy(from: string, to: string): Promise<{ ms: number; bytes: number; entries: number }> {
  const source = new ClassicLevel<Buffer, Buffer>(from, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  const target = new ClassicLevel<Buffer, Buffer>(to, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await source.open();
  await target.open();
  const started = performance.now();
  let bytes = 0;
  let entries = 0;
  let batch = target.batch();
  for await (const [key, value] of source.iterator()) {
    batch.put(key, value);
    bytes += key.length + value.length;
    entries++;
    if (batch.length >= BATCH) {
      await batch.write();
      batch = target.batch();
    }
  }
  if (batch.length > 0) await batch.write();
  else await batch.close();
  const ms = performance.now() - started;
  await source.close();
  await target.close();
  return { ms, bytes, entries };
}

interface Sample {
  readonly atMs: number;
  readonly ms: number;
  readonly ok: boolean;
}

/** Quorum GETs (9 in 10) and PUTs of random keys, one request at a time per connection, through the given nodes. */
function foreground(urls: readonly string[]): { samples: Sample[]; stop: () => Promise<void> } {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const samples: Sample[] = [];
  let stopped = false;
  const value = Buffer.alloc(VALUE_BYTES, 0x62);
  const one = (url: string): Promise<boolean> =>
    new Promise((resolve) => {
      const put = Math.random() < 0.1;
      const request = httpRequest(`${url}/v1/kv/${keyOf(Math.floor(Math.random() * KEYS))}?consistency=quorum`, {
        method: put ? 'PUT' : 'GET',
        agent,
        headers: put ? { 'content-length': value.length } : {},
        timeout: 10_000,
      });
      request.on('response', (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode === 200 || response.statusCode === 204));
      });
      request.on('error', () => resolve(false));
      request.on('timeout', () => request.destroy());
      request.end(put ? value : undefined);
    });
  // `--connections 0`: no foreground load, the bootstrap alone.
  const loops = Array.from({ length: CONNECTIONS }, async (_, i) => {
    while (!stopped) {
      const started = performance.now();
      const ok = await one(urls[i % urls.length]!);
      samples.push({ atMs: Date.now(), ms: performance.now() - started, ok });
    }
  });
  return {
    samples,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(samples: readonly Sample[], fromMs: number, toMs: number): { n: number; perS: number; p50: number; p99: number; errors: number } {
  const window = samples.filter((s) => s.atMs >= fromMs && s.atMs < toMs);
  const ms = window.filter((s) => s.ok).map((s) => s.ms).sort((a, b) => a - b);
  return { n: window.length, perS: window.length / ((toMs - fromMs) / 1000), p50: percentile(ms, 50), p99: percentile(ms, 99), errors: window.filter((s) => !s.ok).length };
}

async function json(url: string): Promise<unknown> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

/** The 4th node serves and every node reports no membership change in progress. */
async function ready(nodes: readonly NodeProcess[]): Promise<boolean> {
  for (const node of nodes) {
    const health = await fetch(`${node.url}/v1/health`).catch(() => undefined);
    await health?.arrayBuffer();
    if (health?.status !== 200) return false;
    const view = (await json(`${node.url}/v1/cluster`)) as { topology?: { change: unknown } };
    if (view.topology?.change !== null) return false;
  }
  return true;
}

async function main(): Promise<void> {
  console.log(`bootstrap bench: ${fmt(KEYS)} keys x ${VALUE_BYTES} B, RF 3, a 4th node joins 3; ${machineLine()}`);
  const tmp = await mkdtemp(join(tmpdir(), 'hearsay-bench-bootstrap-'));
  const nodes: NodeProcess[] = [];
  try {
    const ports = await freePorts(8);
    const gossip = [1, 3, 5, 7].map((i) => `127.0.0.1:${ports[i]!}`);
    const start = (i: number, seeds: readonly string[]): NodeProcess => startNode(`c${i + 1}`, join(tmp, `c${i + 1}`), ports[2 * i]!, ports[2 * i + 1]!, seeds, FLAGS);
    // Formed empty, then stopped: each keeps its ring and owns every partition.
    for (let i = 0; i < 3; i++) nodes.push(start(i, gossip.slice(0, 3).filter((_, j) => j !== i)));
    await waitReady(nodes, 3);
    while (!(await ready(nodes))) await new Promise((resolve) => setTimeout(resolve, 200));
    await Promise.all(nodes.splice(0).map((n) => stopProcess(n.child)));

    let t = performance.now();
    await Promise.all([0, 1, 2].map((i) => loadStore(join(tmp, `c${i + 1}`), `c${i + 1}`)));
    console.log(`  loaded ${fmt(KEYS)} keys into each of 3 stores in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const raw = await rawCopy(join(tmp, 'c1', 'store'), join(tmp, 'raw-copy'));
    console.log(`  raw copy: ${fmt(raw.entries)} entries, ${fmt(raw.bytes / MiB, 1)} MiB in ${(raw.ms / 1000).toFixed(1)} s`);
    await rm(join(tmp, 'raw-copy'), { recursive: true, force: true });

    for (let i = 0; i < 3; i++) nodes.push(start(i, gossip.slice(0, 3).filter((_, j) => j !== i)));
    await waitReady(nodes, 3);
    while (!(await ready(nodes))) await new Promise((resolve) => setTimeout(resolve, 200));

    const load = foreground(nodes.map((n) => n.url));
    const baselineFrom = Date.now();
    await new Promise((resolve) => setTimeout(resolve, BASELINE_S * 1000));
    const joinFrom = Date.now();
    t = performance.now();
    const joiner = startNode('c4', join(tmp, 'c4'), ports[6]!, ports[7]!, gossip.slice(0, 3), [...FLAGS, ...(process.env['BENCH_JOINER_LOG'] === '1' ? ['--log-level', 'info'] : [])]);
    nodes.push(joiner);
    while (!(await ready(nodes).catch(() => false))) {
      if (performance.now() - t > READY_DEADLINE_MS) throw new Error('the 4th node was not ready in time');
      if (joiner.child.exitCode !== null || joiner.child.signalCode !== null) throw new Error(`the 4th node exited (${joiner.child.exitCode ?? joiner.child.signalCode})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const readyMs = performance.now() - t;
    const joinTo = Date.now();
    await load.stop();
    const streamedBytes = await metric(joiner.url, 'hearsay_topology_stream_bytes_total');
    const streamedKeys = await metric(joiner.url, 'hearsay_topology_stream_keys_total');
    const before = summarize(load.samples, baselineFrom, joinFrom);
    const during = summarize(load.samples, joinFrom, joinTo);

    const rawRate = raw.bytes / MiB / (raw.ms / 1000);
    const joinRate = streamedBytes / MiB / (readyMs / 1000);
    console.log('');
    console.log(machineLine());
    console.log('');
    console.log('| what | records | MiB | time | MiB/s | ÷ raw copy |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    console.log(`| raw classic-level copy of one replica (read + write, batches of ${BATCH}) | ${fmt(raw.entries)} entries | ${fmt(raw.bytes / MiB, 1)} | ${(raw.ms / 1000).toFixed(1)} s | ${fmt(rawRate, 1)} | 1.00× |`);
    console.log(`| bootstrap of a 4th node: spawn to ready (streamed records) | ${fmt(streamedKeys)} | ${fmt(streamedBytes / MiB, 1)} | ${(readyMs / 1000).toFixed(1)} s | ${fmt(joinRate, 1)} | ${(joinRate / rawRate).toFixed(2)}× |`);
    console.log('');
    console.log(`| foreground (quorum, 9 GET : 1 PUT, ${CONNECTIONS} connections) | requests/s | p50 ms | p99 ms | errors |`);
    console.log('| --- | ---: | ---: | ---: | ---: |');
    console.log(`| before (${BASELINE_S} s) | ${fmt(before.perS)} | ${fmt(before.p50, 1)} | ${fmt(before.p99, 1)} | ${before.errors} |`);
    console.log(`| during the bootstrap | ${fmt(during.perS)} | ${fmt(during.p50, 1)} | ${fmt(during.p99, 1)} | ${during.errors} |`);
  } finally {
    await Promise.all(nodes.map((n) => stopProcess(n.child)));
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
