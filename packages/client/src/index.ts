export { HearsayClient, DEFAULT_BASE_URL, DEFAULT_TIMEOUT_MS, errorFromResponse } from './client.ts';
export { HearsayError, CLIENT_ERROR_CODES, isHearsayError } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export { encodeKeyPath } from './key-path.ts';
export { readNdjson, NDJSON_LINE_BYTES_MAX } from './ndjson.ts';
export type {
  CallOptions,
  ClientOptions,
  ClusterMember,
  ClusterView,
  Consistency,
  DeleteOptions,
  FetchLike,
  GetOptions,
  Health,
  KvEntry,
  KvHead,
  ListItem,
  ListOptions,
  ListPage,
  MemberState,
  NotModified,
  PutOptions,
  PutResult,
  ReadOptions,
  RepairLine,
  RepairProgress,
  RepairSummary,
} from './types.ts';
