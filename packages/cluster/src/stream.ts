import { hashKey, type BucketEntry, type Store, type StoredRecord } from '@hearsay/storage';
import { ClusterError } from './errors.ts';
import { MAX_RECORDS_PER_REQUEST, recordBytes, validateRecords } from './internode-messages.ts';
import type { StreamPage, StreamRequest } from './peer.ts';

// The page types live with the other internode request types (peer.ts); exported here as before.
export type { StreamPage, StreamRequest };

/**
 * Bulk range copy (internode `stream`): every record of a bucket range, in
 * the store's bucket-index order — (bucket, key hash, key) — a page at a
 * time. A gainer fills a partition it takes over this way from one source
 * (docs/topology.md: measured against repair sessions, which spend extra
 * work comparing trees an empty range makes useless).
 */

/** Buckets read per index range read. */
const BUCKETS_PER_READ = 64;

const encoder = new TextEncoder();

/** Index order of an entry against a key: (key hash, key bytes). Negative when the entry comes first. */
function compareToKey(entry: BucketEntry, hash: bigint, keyBytes: Uint8Array): number {
  const h = BigInt.asUintN(64, entry.keyHash);
  if (h !== hash) return h < hash ? -1 : 1;
  return Buffer.compare(encoder.encode(entry.key), keyBytes);
}

/**
 * One page of `request` from `store`: at most `limit` records and, past the
 * first, at most `maxBytes`; tombstones included. Records deleted since their
 * index entry was read are skipped.
 */
export async function readStreamPage(store: Store, request: StreamRequest, maxBytes: number): Promise<StreamPage> {
  const records: StoredRecord[] = [];
  let bytes = 0;
  let bucket = request.fromBucket;
  let after = request.after;
  while (bucket < request.toBucket) {
    const group = Array.from({ length: Math.min(BUCKETS_PER_READ, request.toBucket - bucket) }, (_, i) => bucket + i);
    const entriesByBucket = await store.bucketEntriesMany(group);
    for (let g = 0; g < group.length; g++) {
      let entries = entriesByBucket[g] ?? [];
      // Where this bucket's reading began: resuming at its first entry left means after this key.
      const resumedAfter = after;
      if (after !== undefined) {
        const hash = BigInt.asUintN(64, hashKey(after));
        const keyBytes = encoder.encode(after);
        entries = entries.filter((e) => compareToKey(e, hash, keyBytes) > 0);
        after = undefined;
      }
      // Records are fetched in slices of what still fits, so one huge bucket never makes a huge answer.
      for (let i = 0; i < entries.length; ) {
        const slice = entries.slice(i, i + Math.max(1, Math.min(request.limit - records.length, 256)));
        const found = await store.getRecords(slice.map((e) => e.key));
        for (let j = 0; j < slice.length; j++) {
          const r = found[j];
          if (records.length >= request.limit || (records.length > 0 && r !== undefined && bytes + recordBytes(r) > maxBytes)) {
            // Resume at this entry: after the one before it in this bucket, or at the bucket's start.
            const before = entries[i + j - 1]?.key ?? resumedAfter;
            return { records, next: before === undefined ? { bucket: group[g]! } : { bucket: group[g]!, after: before } };
          }
          if (r === undefined) continue;
          records.push(r);
          bytes += recordBytes(r);
        }
        i += slice.length;
      }
    }
    bucket += group.length;
  }
  return { records, next: null };
}

/** Client-side validation of a stream answer. */
export function decodeStreamPage(body: unknown): StreamPage {
  const b = body as { records?: unknown; next?: unknown } | null;
  if (b === null || typeof b !== 'object') throw new ClusterError('PEER_BAD_RESPONSE', 'stream response has the wrong shape');
  let records: StoredRecord[];
  try {
    records = validateRecords(b.records, MAX_RECORDS_PER_REQUEST);
  } catch (e) {
    throw new ClusterError('PEER_BAD_RESPONSE', 'stream response holds an invalid record', { cause: e });
  }
  const next = b.next as { bucket?: unknown; after?: unknown } | null | undefined;
  if (next === null || next === undefined) return { records, next: null };
  if (typeof next !== 'object' || !Number.isSafeInteger(next.bucket) || (next.after !== undefined && next.after !== null && typeof next.after !== 'string')) {
    throw new ClusterError('PEER_BAD_RESPONSE', 'stream response has a malformed next position');
  }
  return { records, next: { bucket: next.bucket as number, ...(typeof next.after === 'string' ? { after: next.after } : {}) } };
}

