import { randomBytes } from 'node:crypto';
import { markAhead } from './clock-bound.ts';
import { openingReservation } from './clock-reservation.ts';
import { DigestJournal, loadDigests, type Counts } from './digest-journal.ts';
import { StorageError } from './errors.ts';
import { checkFormat, migrateFormat1, STORE_FORMAT } from './format.ts';
import { BUCKET_BITS_MAX } from './hash.ts';
import { HybridClock } from './hlc.ts';
import { journalKey } from './keyspace.ts';
import { BINARY, createLevel, hasBinaryDefaults, type BinaryEncodings, type LevelBatchOp, type LevelLike } from './level.ts';
import { CHECKPOINT_KEY, COUNTS_KEY, encodeMeta, putMeta, readMeta } from './meta.ts';
import { DEFAULT_BUCKET_BITS, type Settings } from './settings.ts';
import { COUNTER_MAX, isValidNodeId } from './version.ts';

/** A database ready for a store: identity checked, digests in memory, clock started above the last run. */
export interface OpenedDatabase {
  readonly db: LevelLike;
  /** Whether the store opened the database itself (and closes it). */
  readonly ownsDb: boolean;
  readonly nodeId: string;
  readonly bucketBits: number;
  readonly clock: HybridClock;
  readonly journal: DigestJournal;
  /** The clock mark persisted by opening (clock-reservation.ts). */
  readonly reservedMs: number;
  readonly counts: Counts;
  /** Encoding options to pass on each call; undefined when the database's defaults are binary already. */
  readonly encodings: BinaryEncodings | undefined;
}

/**
 * Opens the database and brings it to a state a store can run on, reading
 * only meta, the digest pages and the journal since the last checkpoint
 * (never the data or the index):
 *
 *  1. meta: the format (a newer one is refused), node id and bucket bits
 *     (checked against the options, else taken from them or defaulted);
 *  2. digests: loaded (a format-1 store is migrated first); a journal left
 *     by a crash is folded into pages, and journal entries a checkpoint made
 *     obsolete are deleted;
 *  3. clock: started above the persisted mark, and a new mark written with
 *     the format, node id and bucket bits. A mark further ahead of the wall
 *     clock than the maximum offset plus the reserve is refused (CLOCK_AHEAD)
 *     unless `acceptClockAhead`: a clock started there would stamp versions
 *     that beat later writes of every other node, and one started lower could
 *     stamp below versions this store already issued. Accepted, the clock
 *     starts at the mark and the store stamps nothing until the wall clock
 *     catches up (clock-bound.ts).
 *
 * A database the store opened is closed again when any step fails.
 */
export async function openDatabase(settings: Settings): Promise<OpenedDatabase> {
  const target = settings.target;
  const ownsDb = 'location' in target;
  const db = ownsDb ? createLevel(target.location, settings.writeBufferSize) : target.db;
  try {
    await db.open();
    const meta = await readMeta(db);
    const format = checkFormat(meta.format);
    const storedNodeId = meta.nodeId;
    const storedBucketBits = meta.bucketBits;
    if (storedNodeId !== undefined && !isValidNodeId(storedNodeId)) throw new StorageError('CORRUPT_DATA', 'stored nodeId is malformed');
    if (settings.nodeId !== undefined && storedNodeId !== undefined && storedNodeId !== settings.nodeId) {
      throw new StorageError('NODE_ID_MISMATCH', `store belongs to node ${storedNodeId}, not ${settings.nodeId}`);
    }
    if (storedBucketBits !== undefined && settings.bucketBits !== undefined && storedBucketBits !== settings.bucketBits) {
      throw new StorageError('BUCKET_BITS_MISMATCH', `store has bucketBits ${String(storedBucketBits)}, not ${settings.bucketBits}`);
    }
    const nodeId = storedNodeId ?? settings.nodeId ?? `n-${randomBytes(6).toString('hex')}`;
    const bucketBits = (storedBucketBits as number | undefined) ?? settings.bucketBits ?? DEFAULT_BUCKET_BITS;
    if (!Number.isInteger(bucketBits) || bucketBits < 0 || bucketBits > BUCKET_BITS_MAX) throw new StorageError('CORRUPT_DATA', 'stored bucketBits is malformed');
    const storedHlc = meta.hlc;
    const storedCounts = meta.counts;
    const storedCheckpoint = meta.digestCheckpoint;
    const hw = typeof storedHlc === 'number' && Number.isSafeInteger(storedHlc) ? storedHlc : 0;
    const counts = Array.isArray(storedCounts) ? (storedCounts as number[]) : [0, 0];

    const encodings = hasBinaryDefaults(db) ? undefined : BINARY;
    const checkpointSeq = typeof storedCheckpoint === 'number' && Number.isSafeInteger(storedCheckpoint) && storedCheckpoint >= 0 ? storedCheckpoint : 0;
    // Digests then live in memory: one read of the page keyspace and of the journal since the last checkpoint.
    const loaded = format === 1 ? await migrateFormat1(db, bucketBits) : await loadDigests(db, bucketBits, checkpointSeq, encodings);
    const journal = new DigestJournal(loaded, bucketBits, settings.digestJournalBytes, CHECKPOINT_KEY, COUNTS_KEY, encodeMeta);
    const keys = loaded.counts?.keys ?? counts[0] ?? 0;
    const tombstones = loaded.counts?.tombstones ?? counts[1] ?? 0;
    if (journal.dirty) {
      // Opened after a crash: fold the replayed journal into pages now.
      const batch: LevelBatchOp[] = [];
      const plan = journal.plan(batch, new Map(), null, { keys, tombstones }, false, true);
      await db.batch(batch, { ...BINARY, sync: settings.sync });
      journal.publish(plan);
    }
    // Journal entries a checkpoint made obsolete (deleted in the background, maybe not finished before a crash).
    await db.clear({ gte: journalKey(0), lt: journalKey(journal.checkpointSeq + 1), ...BINARY });

    // Start above every stamp the previous run can have issued.
    const clock = new HybridClock(nodeId, settings.wallNow, { ms: hw, counter: COUNTER_MAX }, settings.maxClockOffsetMs);
    const aheadMs = hw - clock.wallMs();
    if (aheadMs > settings.maxClockOffsetMs + settings.clockReserveMs && !settings.acceptClockAhead) {
      throw markAhead(hw, clock.wallMs(), settings.maxClockOffsetMs);
    }
    const reservedMs = openingReservation(hw, clock.wallMs(), settings.clockReserveMs);
    await db.batch([
      putMeta('format', STORE_FORMAT),
      putMeta('nodeId', nodeId),
      putMeta('bucketBits', bucketBits),
      putMeta('hlc', reservedMs),
    ], { ...BINARY, sync: settings.sync });

    return { db, ownsDb, nodeId, bucketBits, clock, journal, reservedMs, counts: { keys, tombstones }, encodings };
  } catch (e) {
    if (ownsDb) await db.close().catch(() => undefined);
    throw e;
  }
}
