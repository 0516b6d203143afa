export type * from './types.ts';
export { openStore, STORE_FORMAT, type OpenStoreOptions, type StoreSettings } from './store.ts';
export type { LevelLike } from './level.ts';
export { StorageError, isStorageError, type StorageErrorCode } from './errors.ts';
export { DIGEST_BYTES, BUCKET_BITS_MAX, hashKey, bucketOf } from './hash.ts';
export { bucketEntryDigest, digestOfEntries } from './digest.ts';
export {
  COUNTER_MAX, NODE_ID_PATTERN, compareVersions, versionToString, parseVersion, versionAfter, isValidNodeId, isValidVersion,
} from './version.ts';
export { KEY_MAX_BYTES, RECORD_FORMAT_V1, validateRecord, encodeRecord, decodeRecord } from './record.ts';
export {
  compareRecords, compareEntries, supersedes, newer, newest, isDead, isLive, type VersionedEntry,
} from './merge.ts';
export { encodeCursor, decodeCursor } from './cursor.ts';
export { HybridClock } from './hlc.ts';
