/**
 * Storage benchmark: @hearsay/storage beside raw classic-level doing the
 * same work in the same run, on the same machine.
 *
 *   pnpm bench:storage            (tsx bench/storage/run.ts)
 *   pnpm bench:storage --quick    (smaller counts, one round: a smoke run)
 *
 * Work: puts awaited one at a time; puts from 50 concurrent writers; batches
 * of 1000 puts; gets one at a time (uniform over all keys, and over 1000 hot
 * keys); gets from 50 concurrent readers. Values
 * are 100 bytes, keys `key-<n>`; every put writes a new key. Raw classic-level
 * does plain `db.put`/`db.batch`/`db.get` (no versions, no index); ours write
 * data + index entry + bucket digest + counters per batch.
 *
 * The machine is shared, so the sides take turns: every round runs each
 * workload on raw, ours and ours-without-cache one after the other, and the
 * table shows each side's best round. A warm-up pass (quick counts, not
 * timed) runs first, so no side's first round pays for compiling its code.
 * Every measurement starts once the process's background threads are idle:
 * all sides share one process, and LevelDB compacts on its own thread, so
 * otherwise one side's compaction would run in the next side's turn. It
 * also shows the process CPU time per op (user + system, LevelDB's threads
 * included) of that side's best round: on a shared machine that is the
 * steadier figure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { openStore } from '@hearsay/storage';
import { waitForQuietThreads } from '../lib/process.ts';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 1 : 3;
const WRITERS = 50;
const BATCH = 1000;
const COUNTS = quick
  ? { awaited: 2_000, concurrent: 5_000, batches: 5, gets: 5_000 }
  : { awaited: 5_000, concurrent: 20_000, batches: 20, gets: 20_000 };
const WARMUP_COUNTS: Counts = { awaited: 1_000, concurrent: 5_000, batches: 2, gets: 5_000 };
const VALUE = Buffer.alloc(100, 0x61);

interface Side {
  readonly name: string;
  put(key: string): Promise<unknown>;
  batch(keys: string[]): Promise<unknown>;
  get(key: string): Promise<unknown>;
  close(): Promise<void>;
  /** Keys written so far: key-0 .. key-(written-1). */
  written: number;
}

async function rawSide(dir: string): Promise<Side> {
  const db = new ClassicLevel<string, Buffer>(dir, { valueEncoding: 'buffer' });
  await db.open();
  return {
    name: 'raw classic-level',
    put: (key) => db.put(key, VALUE),
    batch: (keys) => db.batch(keys.map((key) => ({ type: 'put' as const, key, value: VALUE }))),
    get: (key) => db.get(key),
    close: () => db.close(),
    written: 0,
  };
}

async function storeSide(dir: string, name: string, cacheSize?: number): Promise<Side> {
  const store = await openStore({ location: dir, ...(cacheSize === undefined ? {} : { cacheSize }) });
  return {
    name,
    put: (key) => store.put(key, VALUE),
    batch: (keys) => store.batch(keys.map((key) => ({ type: 'put' as const, key, value: VALUE }))),
    get: (key) => store.get(key),
    close: () => store.close(),
    written: 0,
  };
}

async function concurrently(workers: number, total: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < total) await op(next++);
  }));
}

/** A fixed xorshift sequence (no Math.random), so every side reads the same keys. */
function keyOrder(n: number, range: number, seed: number): number[] {
  let x = seed | 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) % range;
  });
}

type Counts = typeof COUNTS;

interface Workload {
  readonly name: string;
  /** Ops one run does with these counts. */
  ops(counts: Counts): number;
  run(side: Side, round: number, counts: Counts): Promise<void>;
}

const workloads: Workload[] = [
  {
    name: 'puts, awaited one at a time',
    ops: (c) => c.awaited,
    async run(side, _round, c) {
      for (let i = 0; i < c.awaited; i++) await side.put(`key-${side.written++}`);
    },
  },
  {
    name: `puts, ${WRITERS} concurrent writers`,
    ops: (c) => c.concurrent,
    run: (side, _round, c) => concurrently(WRITERS, c.concurrent, () => side.put(`key-${side.written++}`)),
  },
  {
    name: `puts, batches of ${BATCH}`,
    ops: (c) => c.batches * BATCH,
    async run(side, _round, c) {
      for (let b = 0; b < c.batches; b++) await side.batch(Array.from({ length: BATCH }, () => `key-${side.written++}`));
    },
  },
  {
    name: 'gets, one at a time',
    ops: (c) => c.gets,
    async run(side, round, c) {
      for (const k of keyOrder(c.gets, side.written, 0x2545f491 + round)) await side.get(`key-${k}`);
    },
  },
  {
    name: 'gets of 1000 hot keys, one at a time',
    ops: (c) => c.gets,
    async run(side, round, c) {
      const hot = keyOrder(1000, side.written, 0x3c6ef372);
      for (const k of keyOrder(c.gets, 1000, 0x5bd1e995 + round)) await side.get(`key-${hot[k]}`);
    },
  },
  {
    name: `gets, ${WRITERS} concurrent readers`,
    ops: (c) => c.gets,
    async run(side, round, c) {
      const order = keyOrder(c.gets, side.written, 0x1b873593 + round);
      await concurrently(WRITERS, c.gets, (i) => side.get(`key-${order[i]}`));
    },
  },
];

const dirs: string[] = [];
async function dir(name: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `hearsay-bench-${name}-`));
  dirs.push(d);
  return d;
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');

console.log(`# storage bench: Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${quick ? 'quick' : 'full'} run, best of ${ROUNDS} interleaved rounds`);
const sides = [await rawSide(await dir('raw')), await storeSide(await dir('store'), 'storage'), await storeSide(await dir('nocache'), 'storage, cache off', 0)];
const best = new Map<string, number>();
const cpuPerOp = new Map<string, number>();
let settledMs = 0;
try {
  if (!quick) {
    for (const w of workloads) for (const side of sides) await w.run(side, -1, WARMUP_COUNTS);
    process.stderr.write('warm-up done\n');
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const w of workloads) {
      // Rotate who goes first, so no side always runs right after the heaviest one.
      for (let s = 0; s < sides.length; s++) {
        const side = sides[(s + round) % sides.length] as Side;
        settledMs += await waitForQuietThreads();
        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        await w.run(side, round, COUNTS);
        const opsPerS = w.ops(COUNTS) / (Number(process.hrtime.bigint() - t0) / 1e9);
        const cpu = process.cpuUsage(cpu0);
        const id = `${w.name}|${side.name}`;
        if (opsPerS > (best.get(id) ?? 0)) {
          best.set(id, opsPerS);
          cpuPerOp.set(id, (cpu.user + cpu.system) / w.ops(COUNTS));
        }
      }
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS} done (${(settledMs / 1000).toFixed(1)} s so far waiting for background threads to go idle)\n`);
  }
} finally {
  for (const side of sides) await side.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

const get = (w: string, side: string): number => best.get(`${w}|${side}`) ?? NaN;
console.log('');
const us = (w: string, side: string): string => (cpuPerOp.get(`${w}|${side}`) ?? NaN).toFixed(1);
console.log('| work | @hearsay/storage ops/s | raw classic-level ops/s | ratio | storage, cache off ops/s | ratio | CPU µs/op: storage / raw / cache off |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const w of workloads) {
  const r = get(w.name, 'raw classic-level');
  const o = get(w.name, 'storage');
  const n = get(w.name, 'storage, cache off');
  const cpus = `${us(w.name, 'storage')} / ${us(w.name, 'raw classic-level')} / ${us(w.name, 'storage, cache off')}`;
  console.log(`| ${w.name} | ${fmt(o)} | ${fmt(r)} | ${(o / r).toFixed(2)}x | ${fmt(n)} | ${(n / r).toFixed(2)}x | ${cpus} |`);
}
const awaitedRaw = get('puts, awaited one at a time', 'raw classic-level');
const concurrentOurs = get(`puts, ${WRITERS} concurrent writers`, 'storage');
console.log('');
console.log(`aim: storage with ${WRITERS} concurrent writers >= 2x raw awaited puts: ${fmt(concurrentOurs)} / ${fmt(awaitedRaw)} = ${(concurrentOurs / awaitedRaw).toFixed(2)}x`);
for (const w of workloads.filter((x) => x.name.startsWith('gets'))) {
  console.log(`aim: storage ${w.name} >= 0.9x raw: ${(get(w.name, 'storage') / get(w.name, 'raw classic-level')).toFixed(2)}x`);
}
