import type { Clock } from '@hearsay/clock';
import { argError, checkInt } from './args.ts';
import { DEFAULT_MAX_JOURNAL_BYTES } from './digest-journal.ts';
import { BUCKET_BITS_MAX } from './hash.ts';
import type { LevelLike } from './level.ts';
import { isValidNodeId } from './version.ts';

/** Settings shared by both ways of opening a store. */
export interface StoreSettings {
  /** This node's id; default: the persisted one, else a fresh random one. */
  readonly nodeId?: string;
  /** B, 0..20: the store has 2^B anti-entropy buckets. Default 16; fixed at creation. */
  readonly bucketBits?: number;
  /** The wall clock the hybrid logical clock reads (`now()`, epoch ms). Default `Date.now`. */
  readonly clock?: Pick<Clock, 'now'>;
  /** Read cache budget in bytes; 0 disables it. Default 8 MiB. */
  readonly cacheSize?: number;
  /** Pass LevelDB's `sync` (fsync the log) on every write batch. Default false. */
  readonly sync?: boolean;
  /** Largest value accepted by put/batch/apply. Default 16 MiB. */
  readonly maxValueBytes?: number;
  /**
   * The maximum clock offset: how far apart the clocks of the nodes that
   * exchange records with this store may be. No version further ahead of the
   * wall clock than this is applied, observed or stamped (VERSION_AHEAD,
   * CLOCK_AHEAD; clock-bound.ts). Default 500 ms; 10 ms to 365 days.
   */
  readonly maxClockOffsetMs?: number;
  /**
   * How far ahead of the clock the persisted high-water mark is set. Default
   * `min(100, maxClockOffsetMs / 4)` ms; at most half of `maxClockOffsetMs`,
   * so a clock restarted from the mark stamps within the bound.
   */
  readonly clockReserveMs?: number;
  /**
   * Open a store whose persisted clock high-water mark is further ahead of
   * the wall clock than `maxClockOffsetMs + clockReserveMs` (refused with
   * CLOCK_AHEAD otherwise). The clock still starts at the mark, so the store
   * never stamps below a version it may have issued before; it stamps
   * nothing (CLOCK_AHEAD) until the wall clock is back within the offset of
   * the mark. Reads, applies and scans work meanwhile. Default false.
   */
  readonly acceptClockAhead?: boolean;
  /**
   * Read with the database's synchronous `getSync` (abstract-level 3) when it
   * has one, instead of a round trip through the libuv thread pool. Much
   * faster for data in LevelDB's block cache or the OS page cache; a read
   * that has to go to the disk blocks the event loop meanwhile. Default true.
   */
  readonly syncReads?: boolean;
  /** Writes (ops) allowed to wait in the commit queue before new ones fail with BUSY. Default 100 000. */
  readonly maxPendingWrites?: number;
  /**
   * LevelDB's write buffer (memtable) in bytes, for a store opened by
   * `location`. Default 32 MiB (LevelDB's own default is 4 MiB): fewer, larger
   * level-0 files, so compaction keeps up with group-committed writes and
   * costs less CPU per put. Up to two buffers are in memory at once, and
   * reopening after a crash replays up to one from the log.
   */
  readonly writeBufferSize?: number;
  /**
   * Bytes of digest journal (20 per changed bucket per batch) kept before a
   * batch checkpoints the changed digest pages instead. Bounds what opening
   * after a crash replays. Default 4 MiB; 0 checkpoints every batch.
   */
  readonly digestJournalBytes?: number;
}

export type OpenStoreOptions =
  | (StoreSettings & { readonly location: string; readonly db?: undefined })
  | (StoreSettings & { readonly db: LevelLike; readonly location?: undefined });

export const DEFAULT_BUCKET_BITS = 16;
const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;
const DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024;
const DEFAULT_WRITE_BUFFER_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_CLOCK_OFFSET_MS = 500;
const MAX_CLOCK_OFFSET_MS_MIN = 10;
const MAX_CLOCK_OFFSET_MS_MAX = 365 * 24 * 3600 * 1000;

/** Open options checked, with every default filled in. */
export interface Settings {
  /** Where the database is: a directory the store opens (and closes), or a database the caller owns. */
  readonly target: { readonly location: string } | { readonly db: LevelLike };
  readonly nodeId: string | undefined;
  readonly bucketBits: number | undefined;
  readonly wallNow: () => number;
  readonly cacheBytes: number;
  readonly sync: boolean;
  readonly maxValueBytes: number;
  readonly maxClockOffsetMs: number;
  readonly clockReserveMs: number;
  readonly acceptClockAhead: boolean;
  readonly syncReads: boolean;
  readonly maxPendingWrites: number;
  readonly writeBufferSize: number;
  readonly digestJournalBytes: number;
}

/** Checks `openStore`'s options (INVALID_ARGUMENT naming the first bad one) and fills in the defaults. */
export function resolveSettings(options: OpenStoreOptions): Settings {
  if (typeof options !== 'object' || options === null) throw argError('options must be an object');
  const hasLocation = options.location !== undefined;
  const hasDb = options.db !== undefined;
  if (hasLocation === hasDb) throw argError('give exactly one of location or db');
  if (hasLocation && (typeof options.location !== 'string' || options.location.length === 0)) throw argError('location must be a non-empty string');
  if (options.nodeId !== undefined && !isValidNodeId(options.nodeId)) {
    throw argError('nodeId must be 1 to 128 characters of A-Z a-z 0-9 . _ : -');
  }
  const maxClockOffsetMs = checkInt('maxClockOffsetMs', options.maxClockOffsetMs ?? DEFAULT_MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS_MIN, MAX_CLOCK_OFFSET_MS_MAX);
  const reserveMax = Math.floor(maxClockOffsetMs / 2);
  const clockReserveMs = checkInt('clockReserveMs', options.clockReserveMs ?? Math.min(100, Math.floor(maxClockOffsetMs / 4)), 2, reserveMax);
  if (options.acceptClockAhead !== undefined && typeof options.acceptClockAhead !== 'boolean') throw argError('acceptClockAhead must be a boolean');
  const settings: Settings = {
    target: options.db === undefined ? { location: options.location as string } : { db: options.db },
    nodeId: options.nodeId,
    bucketBits: options.bucketBits === undefined ? undefined : checkInt('bucketBits', options.bucketBits, 0, BUCKET_BITS_MAX),
    wallNow: Date.now,
    cacheBytes: checkInt('cacheSize', options.cacheSize ?? DEFAULT_CACHE_BYTES, 0, Number.MAX_SAFE_INTEGER),
    sync: options.sync ?? false,
    maxValueBytes: checkInt('maxValueBytes', options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES, 0, 2 ** 31 - 1),
    maxClockOffsetMs,
    clockReserveMs,
    acceptClockAhead: options.acceptClockAhead === true,
    syncReads: options.syncReads !== false,
    maxPendingWrites: checkInt('maxPendingWrites', options.maxPendingWrites ?? 100_000, 1, Number.MAX_SAFE_INTEGER),
    writeBufferSize: checkInt('writeBufferSize', options.writeBufferSize ?? DEFAULT_WRITE_BUFFER_BYTES, 64 * 1024, 2 ** 30),
    digestJournalBytes: checkInt('digestJournalBytes', options.digestJournalBytes ?? DEFAULT_MAX_JOURNAL_BYTES, 0, 2 ** 31 - 1),
  };
  // `now` was the option before `clock`; a caller still passing it would silently get Date.now.
  if (Object.hasOwn(options, 'now')) throw argError('now is no longer an option; pass clock: { now() }');
  const clock = options.clock;
  if (clock === undefined) return settings;
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') throw argError('clock must be an object with a now() method');
  return { ...settings, wallNow: () => clock.now() };
}
