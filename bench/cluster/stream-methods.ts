/**
 * How should a new replica be filled (issue 16)? The same data streamed three
 * ways from a loaded store into an empty one, same run, same machine:
 *
 *  - repair: one `@hearsay/repair` session per partition, the empty store as
 *    initiator (Merkle compare, then every differing bucket's entries, then
 *    the records), through the real codec and responder in this process;
 *  - bulk by bucket: per partition, the bucket index (`bucketEntriesMany`)
 *    then `getRecords`, MessagePack-encoded and decoded as on the wire, then
 *    `applyMany` in batches;
 *  - bulk by key scan: the store's key-order scan (`scan`, tombstones
 *    included) in pages, the same encoding, `applyMany`.
 *
 * Each method copies every partition (`--share 1`, a replacement) or a share
 * of them (`--share 0.25`: what a 4th node of RF 3 takes, ~3/4 with RF 3; the
 * default 0.6 is what the 5th of 5 takes), into a fresh classic-level store.
 * After each copy the target must hold exactly the source's records of those
 * partitions (checked by one repair session per partition finding them equal).
 *
 *   node --conditions=@hearsay/source --import tsx bench/cluster/stream-methods.ts [--keys 200000] [--value-bytes 100] [--share 0.6]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { internodePackr as packr } from '@hearsay/cluster';
import { hashKey, openStore, type Store, type StoredRecord } from '@hearsay/storage';
import { createMemoryPeer, partitionBucketRange, runRepairSession } from '@hearsay/repair';
import { Random } from '@hearsay/sim';
import { fmt, machineLine } from '../lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '200000' },
    'value-bytes': { type: 'string', default: '100' },
    share: { type: 'string', default: '0.6' },
  },
});
const KEYS = Number(args.keys);
const VALUE_BYTES = Number(args['value-bytes']);
const SHARE = Number(args.share);
const BUCKET_BITS = 16;
const PARTITION_BITS = 8;
const PARTITIONS = 2 ** PARTITION_BITS;
const BATCH = 4096;
const partitionOf = (key: string): number => Number(BigInt.asUintN(64, hashKey(key)) >> BigInt(64 - PARTITION_BITS));

/** The wire: records encoded and decoded as an internode answer would be. */
function overTheWire(records: readonly StoredRecord[]): { records: StoredRecord[]; bytes: number } {
  const bytes = packr.pack({ records });
  const decoded = packr.unpack(bytes) as { records: StoredRecord[] };
  return { records: decoded.records.map((r) => ({ ...r, value: new Uint8Array(r.value) })), bytes: bytes.byteLength };
}

async function load(store: Store): Promise<number> {
  const random = new Random(7).next;
  const base = Date.now() - 3_600_000;
  let bytes = 0;
  for (let i = 0; i < KEYS; i += BATCH) {
    const batch: StoredRecord[] = [];
    for (let j = i; j < Math.min(KEYS, i + BATCH); j++) {
      const value = new Uint8Array(VALUE_BYTES);
      for (let k = 0; k < VALUE_BYTES; k++) value[k] = Math.floor(random() * 256);
      // A tenth are tombstones: a replica streams those too.
      const tombstone = j % 10 === 9;
      batch.push({ key: `key-${String(j).padStart(8, '0')}`, value: tombstone ? new Uint8Array(0) : value, version: { ms: base + j, counter: 0, node: 'loader' }, tombstone });
      bytes += 13 + VALUE_BYTES;
    }
    await store.applyMany(batch);
  }
  return bytes;
}

interface Copied {
  readonly ms: number;
  readonly records: number;
  readonly wireBytes: number;
}

async function byRepair(source: Store, target: Store, partitions: readonly number[]): Promise<Copied> {
  const peer = createMemoryPeer(source);
  const started = performance.now();
  let records = 0;
  let wireBytes = 0;
  for (const p of partitions) {
    const { fromBucket, toBucket } = partitionBucketRange(p, PARTITIONS, BUCKET_BITS);
    const r = await runRepairSession({ local: target, remote: peer, fromBucket, toBucket });
    records += r.stats.keysReceived;
    wireBytes += r.stats.bytesSent + r.stats.bytesReceived;
  }
  return { ms: performance.now() - started, records, wireBytes };
}

async function byBucketIndex(source: Store, target: Store, partitions: readonly number[]): Promise<Copied> {
  const started = performance.now();
  let records = 0;
  let wireBytes = 0;
  for (const p of partitions) {
    const { fromBucket, toBucket } = partitionBucketRange(p, PARTITIONS, BUCKET_BITS);
    const buckets = Array.from({ length: toBucket - fromBucket }, (_, i) => fromBucket + i);
    const keys = (await source.bucketEntriesMany(buckets)).flatMap((entries) => entries.map((e) => e.key));
    for (let i = 0; i < keys.length; i += BATCH) {
      const found = (await source.getRecords(keys.slice(i, i + BATCH))).filter((r): r is StoredRecord => r !== undefined);
      const wire = overTheWire(found);
      wireBytes += wire.bytes;
      await target.applyMany(wire.records);
      records += wire.records.length;
    }
  }
  return { ms: performance.now() - started, records, wireBytes };
}

async function byKeyScan(source: Store, target: Store, partitions: readonly number[]): Promise<Copied> {
  const wanted = new Set(partitions);
  const started = performance.now();
  let records = 0;
  let wireBytes = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await source.scan({ includeTombstones: true, limit: BATCH, ...(cursor === undefined ? {} : { cursor }) });
    const mine = page.records.filter((r) => wanted.has(partitionOf(r.key)));
    if (mine.length > 0) {
      const wire = overTheWire(mine);
      wireBytes += wire.bytes;
      await target.applyMany(wire.records);
      records += wire.records.length;
    }
    if (page.next === null) break;
    cursor = page.next;
  }
  return { ms: performance.now() - started, records, wireBytes };
}

async function assertCopied(source: Store, target: Store, partitions: readonly number[]): Promise<void> {
  const peer = createMemoryPeer(source);
  for (const p of partitions) {
    const { fromBucket, toBucket } = partitionBucketRange(p, PARTITIONS, BUCKET_BITS);
    const r = await runRepairSession({ local: target, remote: peer, fromBucket, toBucket });
    if (!r.inSync) throw new Error(`partition ${p} differs after the copy`);
  }
}

async function main(): Promise<void> {
  console.log(`stream methods: ${fmt(KEYS)} keys x ${VALUE_BYTES} B (a tenth tombstones), share ${SHARE} of ${PARTITIONS} partitions; ${machineLine()}`);
  const dir = await mkdtemp(join(tmpdir(), 'hearsay-bench-stream-'));
  try {
    const source = await openStore({ location: join(dir, 'source'), nodeId: 'source', bucketBits: BUCKET_BITS });
    const loadStarted = performance.now();
    const dataBytes = await load(source);
    console.log(`  loaded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`);
    const random = new Random(11).next;
    const partitions = Array.from({ length: PARTITIONS }, (_, p) => p).filter(() => random() < SHARE);
    const shareBytes = (dataBytes * partitions.length) / PARTITIONS;
    const rows: string[][] = [];
    let n = 0;
    // Warm-up round (JIT, page cache) then the measured round, each method into a fresh store.
    for (const round of ['warm-up', 'measured'] as const) {
      for (const [name, copy] of [['repair sessions', byRepair], ['bulk by bucket index', byBucketIndex], ['bulk by key scan', byKeyScan]] as const) {
        const target = await openStore({ location: join(dir, `target-${n++}`), nodeId: 'target', bucketBits: BUCKET_BITS });
        const r = await copy(source, target, partitions);
        await assertCopied(source, target, partitions);
        await target.close();
        if (round === 'measured') {
          rows.push([name, fmt(r.records), `${(r.ms / 1000).toFixed(2)} s`, `${fmt(shareBytes / 2 ** 20 / (r.ms / 1000), 1)} MiB/s`, `${fmt(r.wireBytes / 2 ** 20, 1)} MiB`]);
        }
      }
    }
    await source.close();
    const best = Math.min(...rows.map((r) => Number.parseFloat(r[2]!)));
    console.log(`\n| method | records | time | data rate (key + value) | on the wire | time / fastest |`);
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(`| ${r.join(' | ')} | ${(Number.parseFloat(r[2]!) / best).toFixed(2)}x |`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
