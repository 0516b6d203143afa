/**
 * Repair bench (issue 4): two replicas of 1,000,000 keys with 100-byte
 * values, repaired by `@hearsay/repair` sessions through the in-memory
 * transport (real encoder, decoder and responder; both replicas in this
 * process).
 *
 * Scenarios: in sync; 0.1% of keys diverged (1000); 10% diverged (100,000).
 * Divergence is a mix: a newer value on A, a newer value on B, a delete on A,
 * a key only B has (a quarter each). Each diverged scenario runs once over
 * the whole store (one range of 2^16 buckets) and once as the cluster does
 * it, one session per partition (256 ranges of 256 buckets), on fresh
 * divergence. After each, one more whole-store session must find the roots
 * equal.
 *
 * Baselines from the same run:
 *  - minimum: the bytes of the differing records themselves (key + value +
 *    12-byte version + node id + tombstone flag of each winning record);
 *  - whole buckets: what a Merkle repair that streams every record of each
 *    differing leaf bucket (Cassandra / Riak style) would ship, both ways;
 *  - everything: every record of one replica, once.
 *
 * Stores: classic-level in a temp dir. Replica B is a file copy of replica A
 * after loading (loading 1M keys through applyMany twice would double the
 * longest part of the run); `--store memory` loads both into memory-level.
 *
 *   pnpm bench:repair [--keys 1000000] [--value-bytes 100] [--store classic|memory] [--no-ranges]
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryLevel } from 'memory-level';
import { bucketOf, hashKey, openStore } from '@hearsay/storage';
import type { LevelLike, Store, StoredRecord } from '@hearsay/storage';
import { addRepairStats, createMemoryPeer, emptyRepairStats, partitionBucketRange, runRepairSession } from '@hearsay/repair';
import type { RepairPeer, SessionProgress, RepairStats } from '@hearsay/repair';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'value-bytes': { type: 'string', default: '100' },
    store: { type: 'string', default: 'classic' },
    'no-ranges': { type: 'boolean', default: false },
  },
});
const KEYS = Number(args.keys);
const VALUE_BYTES = Number(args['value-bytes']);
const BUCKET_BITS = 16;
const BUCKETS = 2 ** BUCKET_BITS;
const PARTITIONS = 256;
const LOAD_BATCH = 4096;
const BASE_MS = Date.now() - 3_600_000;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const yieldToQueue = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** mulberry32: the bench's divergence is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const keyOf = (i: number): string => `key-${String(i).padStart(7, '0')}`;
const recordBytes = (r: StoredRecord): number => Buffer.byteLength(r.key) + r.value.length + 12 + r.version.node.length + 1;

function valueBytes(random: () => number): Uint8Array {
  const v = new Uint8Array(VALUE_BYTES);
  for (let i = 0; i < v.length; i += 4) {
    const x = (random() * 2 ** 32) >>> 0;
    v[i] = x & 255; v[i + 1] = (x >>> 8) & 255; v[i + 2] = (x >>> 16) & 255; v[i + 3] = x >>> 24;
  }
  return v;
}

async function openReplica(dir: string | undefined, nodeId: string): Promise<Store> {
  if (dir !== undefined) return openStore({ location: dir, bucketBits: BUCKET_BITS });
  return openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId, bucketBits: BUCKET_BITS });
}

/** Bucket membership of every key, for the whole-buckets baseline (no store reads). */
const bucketCountA = new Uint32Array(BUCKETS);
const bucketCountB = new Uint32Array(BUCKETS);

async function load(stores: Store[]): Promise<number> {
  const random = prng(1);
  let bytes = 0;
  const started = performance.now();
  for (let i = 0; i < KEYS; i += LOAD_BATCH) {
    const batch: StoredRecord[] = [];
    for (let j = i; j < Math.min(KEYS, i + LOAD_BATCH); j++) {
      const r: StoredRecord = { key: keyOf(j), value: valueBytes(random), version: { ms: BASE_MS + (j % 1000), counter: 0, node: 'loader' }, tombstone: false };
      batch.push(r);
      bytes += recordBytes(r);
      const b = bucketOf(hashKey(r.key), BUCKET_BITS);
      bucketCountA[b]!++;
      bucketCountB[b]!++;
    }
    for (const s of stores) {
      await s.applyMany(batch);
      await yieldToQueue();
    }
    if ((i / LOAD_BATCH) % 25 === 0) process.stdout.write(`\r  loaded ${i + batch.length} keys, ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  process.stdout.write('\n');
  return bytes;
}

interface Divergence {
  readonly keys: number;
  readonly minimumBytes: number;
  readonly wholeBucketBytes: number;
}

let round = 0;
/** Makes `count` keys differ (a mixed quarter each); returns the baselines for exactly this divergence. */
async function diverge(a: Store, b: Store, count: number, recordBytesAvg: number): Promise<Divergence> {
  round++;
  const random = prng(1000 + round);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(random() * KEYS));
  const forA: StoredRecord[] = [];
  const forB: StoredRecord[] = [];
  const touched = new Set<number>();
  let minimumBytes = 0;
  let n = 0;
  for (const i of picked) {
    const ms = BASE_MS + 2000 + round * 1000;
    let r: StoredRecord;
    switch (n++ % 4) {
      case 0: r = { key: keyOf(i), value: valueBytes(random), version: { ms, counter: 0, node: 'writer-a' }, tombstone: false }; forA.push(r); break;
      case 1: r = { key: keyOf(i), value: valueBytes(random), version: { ms, counter: 0, node: 'writer-b' }, tombstone: false }; forB.push(r); break;
      case 2: r = { key: keyOf(i), value: new Uint8Array(0), version: { ms, counter: 0, node: 'writer-a' }, tombstone: true }; forA.push(r); break;
      default: {
        r = { key: `new-${round}-${String(i).padStart(7, '0')}`, value: valueBytes(random), version: { ms, counter: 0, node: 'writer-b' }, tombstone: false };
        forB.push(r);
        const bucket = bucketOf(hashKey(r.key), BUCKET_BITS);
        bucketCountB[bucket]!++;
        bucketCountA[bucket]!++; // after repair A holds it too
        touched.add(bucket);
        minimumBytes += recordBytes(r);
        continue;
      }
    }
    minimumBytes += recordBytes(r);
    touched.add(bucketOf(hashKey(r.key), BUCKET_BITS));
  }
  let wholeBucketRecords = 0;
  for (const bucket of touched) wholeBucketRecords += (bucketCountA[bucket] as number) + (bucketCountB[bucket] as number);
  for (let i = 0; i < forA.length; i += LOAD_BATCH) { await a.applyMany(forA.slice(i, i + LOAD_BATCH)); await yieldToQueue(); }
  for (let i = 0; i < forB.length; i += LOAD_BATCH) { await b.applyMany(forB.slice(i, i + LOAD_BATCH)); await yieldToQueue(); }
  return { keys: count, minimumBytes, wholeBucketBytes: Math.round(wholeBucketRecords * recordBytesAvg) };
}

interface Measured {
  readonly stats: RepairStats;
  readonly wallMs: number;
  /**
   * Peak of heapUsed + arrayBuffers above the pre-session baseline, sampled
   * at every message; a full GC runs at every progress event, so this is the
   * growth within one step (tree level, bucket batch) plus what the session
   * keeps across steps.
   */
  readonly peakBytes: number;
  readonly sessions: number;
  readonly maxSessionMs: number;
  /** Time to the range hash answer, in the tree descent, in the bucket exchange (summed over sessions). */
  readonly phaseMs: { open: number; tree: number; exchange: number };
}

/** A peer that samples memory at every message, for the session's peak. */
function sampledPeer(store: Store, sample: () => void): RepairPeer {
  const inner = createMemoryPeer(store, { clock: { now: () => performance.now() } });
  return {
    async request(body) {
      sample();
      const reply = await inner.request(body);
      sample();
      return reply;
    },
  };
}

async function measure(a: Store, b: Store, ranges: readonly [number, number][]): Promise<Measured> {
  gc();
  const used = (): number => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
  const baseline = used();
  let peak = baseline;
  const sample = (): void => { peak = Math.max(peak, used()); };
  const peer = sampledPeer(b, sample);
  const total = emptyRepairStats();
  const phaseMs = { open: 0, tree: 0, exchange: 0 };
  let maxSessionMs = 0;
  // Full GCs at progress events (so the peak is per step) are timed and left out of every time figure.
  let gcMs = 0;
  const started = performance.now();
  for (const [fromBucket, toBucket] of ranges) {
    const mark = (): { at: number; gc: number } => ({ at: performance.now(), gc: gcMs });
    const start = mark();
    let treeAt: { at: number; gc: number } | undefined;
    let exchangeAt: { at: number; gc: number } | undefined;
    const r = await runRepairSession({
      local: a, remote: peer, fromBucket, toBucket,
      onProgress: (p: SessionProgress) => {
        sample();
        if (p.phase === 'compare') treeAt ??= mark();
        if (p.phase === 'exchange') exchangeAt ??= mark();
        if (p.phase !== 'done') {
          const t = performance.now();
          gc();
          gcMs += performance.now() - t;
        }
      },
    });
    const end = mark();
    const span = (x: { at: number; gc: number }, y: { at: number; gc: number }): number => y.at - x.at - (y.gc - x.gc);
    phaseMs.open += span(start, treeAt ?? end);
    if (treeAt !== undefined) phaseMs.tree += span(treeAt, exchangeAt ?? end);
    if (exchangeAt !== undefined) phaseMs.exchange += span(exchangeAt, end);
    addRepairStats(total, r.stats);
    maxSessionMs = Math.max(maxSessionMs, span(start, end));
  }
  const wallMs = performance.now() - started - gcMs;
  return { stats: total, wallMs, peakBytes: peak - baseline, sessions: ranges.length, maxSessionMs, phaseMs };
}

async function assertInSync(a: Store, b: Store): Promise<void> {
  const check = await runRepairSession({ local: b, remote: createMemoryPeer(a), fromBucket: 0, toBucket: BUCKETS });
  if (!check.inSync) throw new Error('replicas are not in sync after repair');
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(2)} MiB`;
const size = (n: number): string => (n < 1024 * 1024 ? kib(n) : mib(n));
const rows: string[][] = [];

function report(scenario: string, m: Measured, d: Divergence | undefined, everythingBytes: number): void {
  const wire = m.stats.bytesSent + m.stats.bytesReceived;
  const row = [
    scenario,
    m.sessions === 1 ? 'whole store' : `${m.sessions} ranges`,
    `${size(m.stats.bytesSent)} / ${size(m.stats.bytesReceived)}`,
    size(wire),
    d === undefined ? '0' : `${size(d.minimumBytes)} (${(wire / d.minimumBytes).toFixed(2)}x)`,
    d === undefined ? '-' : `${(d.minimumBytes * 2 + 64 * 1024) >= wire ? 'yes' : 'NO'}`,
    d === undefined ? '-' : `${size(d.wholeBucketBytes)} (${(wire / d.wholeBucketBytes).toFixed(3)}x)`,
    `${size(everythingBytes)} (${(wire / everythingBytes).toFixed(4)}x)`,
    `${m.stats.keysSent} / ${m.stats.keysReceived}`,
    String(m.stats.roundTrips),
    `${m.wallMs.toFixed(0)} ms${m.sessions > 1 ? ` (max ${m.maxSessionMs.toFixed(1)})` : ''}`,
    `${m.phaseMs.open.toFixed(0)} / ${m.phaseMs.tree.toFixed(0)} / ${m.phaseMs.exchange.toFixed(0)} ms`,
    mib(m.peakBytes),
  ];
  rows.push(row);
  console.log(`  ${row.join(' | ')}`);
}

async function main(): Promise<void> {
  console.log(`repair bench: ${KEYS} keys x ${VALUE_BYTES} B values, 2^${BUCKET_BITS} buckets, store ${args.store}; ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  const dir = await mkdtemp(join(tmpdir(), 'hearsay-bench-repair-'));
  try {
    let a: Store;
    let b: Store;
    let everythingBytes: number;
    const loadStarted = performance.now();
    if (args.store === 'memory') {
      a = await openReplica(undefined, 'replica-a');
      b = await openReplica(undefined, 'replica-b');
      everythingBytes = await load([a, b]);
    } else {
      a = await openReplica(join(dir, 'a'), 'replica-a');
      everythingBytes = await load([a]);
      await a.close();
      await cp(join(dir, 'a'), join(dir, 'b'), { recursive: true });
      a = await openReplica(join(dir, 'a'), 'replica-a');
      b = await openReplica(join(dir, 'b'), 'replica-b');
    }
    console.log(`  load: ${((performance.now() - loadStarted) / 1000).toFixed(0)} s`);
    const avg = everythingBytes / KEYS;
    const whole: [number, number][] = [[0, BUCKETS]];
    const perPartition: [number, number][] = Array.from({ length: PARTITIONS }, (_, p) => {
      const r = partitionBucketRange(p, PARTITIONS, BUCKET_BITS);
      return [r.fromBucket, r.toBucket];
    });
    console.log('  scenario | ranges | sent / received | on the wire | minimum (ratio) | <= 2x min + 64 KiB | whole buckets (ratio) | everything (ratio) | keys sent / received | round trips | time | open / tree / exchange | peak heap growth');

    // Warm-up (JIT, caches), not reported.
    await measure(a, b, whole);
    report('in sync', await measure(a, b, whole), undefined, everythingBytes);
    if (!args['no-ranges']) report('in sync', await measure(a, b, perPartition), undefined, everythingBytes);

    for (const [label, fraction] of [['0.1% diverged', 0.001], ['10% diverged', 0.1]] as const) {
      const count = Math.round(KEYS * fraction);
      let d = await diverge(a, b, count, avg);
      report(label, await measure(a, b, whole), d, everythingBytes);
      await assertInSync(a, b);
      if (!args['no-ranges']) {
        d = await diverge(a, b, count, avg);
        report(label, await measure(a, b, perPartition), d, everythingBytes);
        await assertInSync(a, b);
      }
    }
    console.log('\n| scenario | ranges | sent / received | on the wire | minimum (ratio) | ≤ 2× min + 64 KiB | whole buckets (ratio) | everything (ratio) | keys sent / received | round trips | time | open / tree / exchange | peak heap growth |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
    await a.close();
    await b.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
