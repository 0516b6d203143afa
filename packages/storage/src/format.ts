import { DIGEST, keyspaceRange } from './keyspace.ts';
import { DIGEST_BYTES } from './hash.ts';
import { CHECKPOINT_META, allPages, type LoadedDigests } from './digest-journal.ts';
import { StorageError } from './errors.ts';
import { BINARY, type LevelBatchOp, type LevelLike } from './level.ts';
import { putMeta } from './meta.ts';

/**
 * Layout version of the whole keyspace (meta `format`). Append-only.
 * 1: one digest entry per bucket ('g'). 2: digest pages and a journal
 * (digest-journal.ts); a format-1 store is migrated when opened.
 */
export const STORE_FORMAT = 2;

/** The format of a store as read from meta (undefined: a new store). Throws UNSUPPORTED_FORMAT for a newer one. */
export function checkFormat(format: unknown): 1 | 2 | undefined {
  if (format === undefined || format === 1 || format === STORE_FORMAT) return format;
  throw new StorageError('UNSUPPORTED_FORMAT', `store format ${String(format)} is not supported (this code reads ${STORE_FORMAT})`);
}

/**
 * Format 1 kept one digest entry per bucket ('g'). Rewrites them as pages
 * (format 2) in one batch, with the checkpoint mark and the new format.
 */
export async function migrateFormat1(db: LevelLike, bucketBits: number): Promise<LoadedDigests> {
  const n = 2 ** bucketBits;
  const digests = new Uint8Array(n * DIGEST_BYTES);
  const batch: LevelBatchOp[] = [];
  for (const [k, v] of await db.iterator({ ...keyspaceRange(DIGEST), ...BINARY }).all()) {
    const bucket = k.length === 5 ? k.readUInt32BE(1) : -1;
    if (bucket < 0 || bucket >= n || v.length !== DIGEST_BYTES) throw new StorageError('CORRUPT_DATA', 'malformed digest entry');
    digests.set(v, bucket * DIGEST_BYTES);
    batch.push({ type: 'del', key: k });
  }
  batch.push(...allPages(digests, bucketBits));
  batch.push(putMeta(CHECKPOINT_META, 0));
  batch.push(putMeta('format', STORE_FORMAT));
  await db.batch(batch, BINARY);
  return { digests, lastSeq: 0, checkpointSeq: 0, counts: undefined, dirtyPages: new Set(), journalBytes: 0 };
}
