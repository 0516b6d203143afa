import { bucketOf, digestOfEntries, hashKey } from '../src/index.ts';
import type { BucketEntry, Store, StoredRecord } from '../src/index.ts';

/** Every record of the store, tombstones and expired ones included, in key order. */
export async function allRecords(store: Store): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.scan({ includeTombstones: true, limit: 1000, ...(cursor === null ? {} : { cursor }) });
    out.push(...page.records);
    cursor = page.next;
  } while (cursor !== null);
  return out;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/**
 * Recomputes the anti-entropy index from a full scan of the data and checks
 * that the stored index entries, the bucket digests and the stats agree with
 * it. Returns a list of disagreements (empty = consistent).
 */
export async function checkIntegrity(store: Store): Promise<string[]> {
  const problems: string[] = [];
  const records = await allRecords(store);
  const expected = new Map<number, BucketEntry[]>();
  for (const r of records) {
    const keyHash = hashKey(r.key);
    const b = bucketOf(keyHash, store.bucketBits);
    const list = expected.get(b) ?? [];
    list.push({ key: r.key, keyHash, version: r.version, tombstone: r.tombstone });
    expected.set(b, list);
  }
  const n = 2 ** store.bucketBits;
  const digests = await store.bucketDigests(0, n);
  const buckets = new Set<number>(expected.keys());
  if (n <= 4096) for (let b = 0; b < n; b++) buckets.add(b);
  else digests.forEach((d, b) => { if (d.some((x) => x !== 0)) buckets.add(b); });
  for (const b of buckets) {
    const want = (expected.get(b) ?? []).sort((x, y) =>
      x.keyHash < y.keyHash ? -1 : x.keyHash > y.keyHash ? 1 : Buffer.compare(Buffer.from(x.key), Buffer.from(y.key)));
    const got = await store.bucketEntries(b);
    const show = (es: BucketEntry[]): string => JSON.stringify(es.map((e) => [e.key, e.keyHash.toString(16), e.version, e.tombstone]));
    if (show(got) !== show(want)) problems.push(`bucket ${b}: index ${show(got)} but data says ${show(want)}`);
    const recomputed = digestOfEntries(want);
    const stored = digests[b] as Uint8Array;
    if (hex(recomputed) !== hex(stored)) problems.push(`bucket ${b}: digest ${hex(stored)} but recomputed ${hex(recomputed)}`);
  }
  const live = records.filter((r) => !r.tombstone).length;
  const stats = store.stats();
  if (stats.keys !== live || stats.tombstones !== records.length - live) {
    problems.push(`stats ${JSON.stringify(stats)} but data has ${live} live and ${records.length - live} tombstones`);
  }
  return problems;
}
