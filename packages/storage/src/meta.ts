import { Packr } from 'msgpackr';
import { CHECKPOINT_META } from './digest-journal.ts';
import { StorageError } from './errors.ts';
import { metaKey } from './keyspace.ts';
import { BINARY, type LevelBatchOp, type LevelLike } from './level.ts';

/**
 * The store's meta entries (`'m'` ‖ name -> MessagePack value, see
 * keyspace.ts): what it knows about itself besides its data. Names are part
 * of the on-disk format.
 *
 *   format            layout version of the whole keyspace (format.ts)
 *   nodeId            the node whose clock stamps local writes
 *   bucketBits        B: 2^B anti-entropy buckets
 *   hlc               the clock's persisted high-water mark (clock-reservation.ts)
 *   counts            [live keys, tombstones] at the last digest checkpoint
 *   digestCheckpoint  seq of the last digest checkpoint (digest-journal.ts)
 */
export type MetaName = 'format' | 'nodeId' | 'bucketBits' | 'hlc' | 'counts' | typeof CHECKPOINT_META;

const packr = new Packr({ useRecords: false });

export function encodeMeta(value: unknown): Buffer {
  return packr.pack(value);
}

export const COUNTS_KEY = metaKey('counts');
export const HLC_KEY = metaKey('hlc');
export const CHECKPOINT_KEY = metaKey(CHECKPOINT_META);

/** The batch op that sets a meta entry. */
export function putMeta(name: MetaName, value: unknown): LevelBatchOp {
  return { type: 'put', key: metaKey(name), value: encodeMeta(value) };
}

/** Every meta entry as decoded (undefined when absent); checking the values is the caller's job. */
export type StoredMeta = Readonly<Record<MetaName, unknown>>;

const NAMES: readonly MetaName[] = ['format', 'nodeId', 'bucketBits', 'hlc', 'counts', CHECKPOINT_META];

/** Reads every meta entry in one call. Throws CORRUPT_DATA when one does not decode. */
export async function readMeta(db: LevelLike): Promise<StoredMeta> {
  const raw = await db.getMany(NAMES.map((n) => metaKey(n)), BINARY);
  const meta: Partial<Record<MetaName, unknown>> = {};
  raw.forEach((b, i) => {
    const name = NAMES[i] as MetaName;
    if (b === undefined) return;
    try {
      meta[name] = packr.unpack(b) as unknown;
    } catch (e) {
      throw new StorageError('CORRUPT_DATA', `meta ${name} does not decode`, { cause: e });
    }
  });
  return meta as StoredMeta;
}
