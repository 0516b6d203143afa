import { isValidVersion, validateRecord } from '@hearsay/storage';
import type { StoredRecord, Version } from '@hearsay/storage';
import { ClusterError } from './errors.ts';
import type { ReplicaOutcome } from './peer.ts';
import { decodeRing, type Ring } from './ring.ts';

/**
 * Internode requests and responses. On the wire each is a MessagePack body
 * POSTed to `/internal/<type>` (HTTP) or carried by the simulated network;
 * decoded from `unknown` and validated here, at the boundary.
 *
 * The request types are part of the protocol between nodes: append only.
 */
export const INTERNODE_TYPES = ['write', 'read', 'hint', 'scan', 'repair', 'purge', 'ring', 'stream'] as const;
export type InternodeType = (typeof INTERNODE_TYPES)[number];

export type InternodeRequest =
  | { readonly type: 'write'; readonly records: StoredRecord[] }
  | { readonly type: 'read'; readonly keys: string[] }
  | { readonly type: 'hint'; readonly target: string; readonly records: StoredRecord[] }
  | { readonly type: 'scan'; readonly prefix: string; readonly after?: string; readonly limit: number }
  | { readonly type: 'repair'; readonly message: unknown }
  | { readonly type: 'purge'; readonly fromBucket: number; readonly toBucket: number; readonly beforeMs: number }
  /** The sender's ownership table; answered with the receiver's, both merge (docs/topology.md). */
  | { readonly type: 'ring'; readonly ring: Ring }
  /** A page of every record of buckets [fromBucket, toBucket), resuming after `after` (a key of `fromBucket`). */
  | { readonly type: 'stream'; readonly fromBucket: number; readonly toBucket: number; readonly after?: string; readonly limit: number };

/** Bounds on one request; a request past them is BAD_REQUEST. */
export const MAX_RECORDS_PER_REQUEST = 10_000;
export const MAX_KEYS_PER_REQUEST = 10_000;
export const MAX_SCAN_LIMIT = 10_000;

export function isInternodeType(s: string): s is InternodeType {
  return (INTERNODE_TYPES as readonly string[]).includes(s);
}

function bad(message: string, cause?: unknown): ClusterError {
  return new ClusterError('BAD_REQUEST', message, cause === undefined ? undefined : { cause });
}

function obj(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body must be a map');
  return body as Record<string, unknown>;
}

export function validateRecords(x: unknown, max = MAX_RECORDS_PER_REQUEST): StoredRecord[] {
  if (!Array.isArray(x)) throw bad('records must be an array');
  if (x.length > max) throw bad(`more than ${max} records`);
  try {
    return x.map((r) => validateRecord(r));
  } catch (e) {
    throw bad(`invalid record: ${(e as Error).message}`, e);
  }
}

/** Validates the body of a request of `type`. Throws ClusterError BAD_REQUEST. */
export function decodeRequest(type: InternodeType, body: unknown): InternodeRequest {
  switch (type) {
    case 'write':
      return { type, records: validateRecords(obj(body)['records']) };
    case 'read': {
      const keys = obj(body)['keys'];
      if (!Array.isArray(keys) || keys.length > MAX_KEYS_PER_REQUEST || !keys.every((k) => typeof k === 'string' && k.length > 0)) {
        throw bad('keys must be an array of non-empty strings');
      }
      return { type, keys: keys as string[] };
    }
    case 'hint': {
      const b = obj(body);
      const target = b['target'];
      if (typeof target !== 'string' || target.length === 0 || target.length > 128) throw bad('target must be a member id');
      return { type, target, records: validateRecords(b['records']) };
    }
    case 'scan': {
      const b = obj(body);
      const { prefix, after, limit } = b;
      if (typeof prefix !== 'string') throw bad('prefix must be a string');
      if (after !== undefined && after !== null && typeof after !== 'string') throw bad('after must be a string');
      if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_SCAN_LIMIT) throw bad('limit out of range');
      return { type, prefix, limit: limit as number, ...(typeof after === 'string' ? { after } : {}) };
    }
    case 'repair':
      return { type, message: obj(body)['message'] };
    case 'purge': {
      const { fromBucket, toBucket, beforeMs } = obj(body);
      const int = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
      if (!int(fromBucket) || !int(toBucket) || !int(beforeMs) || fromBucket >= toBucket) throw bad('purge needs a bucket range and beforeMs');
      return { type, fromBucket, toBucket, beforeMs };
    }
    case 'ring':
      return { type, ring: decodeRing(obj(body)['ring']) };
    case 'stream': {
      const { fromBucket, toBucket, after, limit } = obj(body);
      const int = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
      if (!int(fromBucket) || !int(toBucket) || fromBucket >= toBucket) throw bad('stream needs a bucket range');
      if (after !== undefined && after !== null && (typeof after !== 'string' || after.length === 0)) throw bad('after must be a key');
      if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_RECORDS_PER_REQUEST) throw bad('limit out of range');
      return { type, fromBucket, toBucket, limit: limit as number, ...(typeof after === 'string' ? { after } : {}) };
    }
    default: {
      const never: never = type;
      throw bad(`unknown request type ${String(never)}`);
    }
  }
}

/**
 * Response validation on the client side. A read answers the records of
 * its keys in order, or of a prefix of them (at least one) when they would
 * make the answer too large: the caller asks again for the rest.
 */
export function decodeReadResponse(body: unknown, expected: number): (StoredRecord | undefined)[] {
  const records = (body as { records?: unknown } | null)?.records;
  if (!Array.isArray(records) || records.length > expected || (records.length === 0 && expected > 0)) {
    throw new ClusterError('PEER_BAD_RESPONSE', 'read response has the wrong shape');
  }
  try {
    return records.map((r) => (r === null || r === undefined ? undefined : validateRecord(r)));
  } catch (e) {
    throw new ClusterError('PEER_BAD_RESPONSE', 'read response holds an invalid record', { cause: e });
  }
}

/**
 * The answer to a `write`: `applied` (records that changed the store) and,
 * from nodes that say so, `results`: one entry per record, in order — `null`
 * (applied, or the same record was there), `{ held: [ms, counter, node],
 * tombstone }` (the replica holds a higher version: the write lost there), or
 * `{ aheadMs }` (refused: the version is more than the replica's maximum
 * clock offset ahead of its clock). Without `results` (an older node), every
 * record counts as applied.
 */
export interface WriteAnswer {
  readonly applied: number;
  readonly results: (null | { readonly held: readonly [number, number, string]; readonly tombstone: boolean } | { readonly aheadMs: number })[];
}

export function encodeWriteAnswer(outcomes: readonly ReplicaOutcome[]): WriteAnswer {
  let applied = 0;
  const results = outcomes.map((o) => {
    if (o === null) {
      applied++;
      return null;
    }
    if ('held' in o) return { held: [o.held.ms, o.held.counter, o.held.node] as const, tombstone: o.tombstone };
    return { aheadMs: o.aheadMs };
  });
  return { applied, results };
}

export function decodeWriteResponse(body: unknown, expected: number): ReplicaOutcome[] {
  const b = body as { applied?: unknown; results?: unknown } | null;
  if (b === null || typeof b !== 'object' || typeof b.applied !== 'number') throw new ClusterError('PEER_BAD_RESPONSE', 'write response has the wrong shape');
  if (b.results === undefined || b.results === null) return new Array<ReplicaOutcome>(expected).fill(null);
  if (!Array.isArray(b.results) || b.results.length !== expected) throw new ClusterError('PEER_BAD_RESPONSE', 'write response has the wrong number of results');
  return b.results.map((r: unknown): ReplicaOutcome => {
    if (r === null || r === undefined) return null;
    const o = r as { held?: unknown; tombstone?: unknown; aheadMs?: unknown };
    if (Array.isArray(o.held) && o.held.length === 3 && typeof o.tombstone === 'boolean') {
      const held: Version = { ms: o.held[0] as number, counter: o.held[1] as number, node: o.held[2] as string };
      if (isValidVersion(held)) return { held, tombstone: o.tombstone };
    }
    if (typeof o.aheadMs === 'number' && Number.isFinite(o.aheadMs)) return { aheadMs: o.aheadMs };
    throw new ClusterError('PEER_BAD_RESPONSE', 'write response holds a malformed result');
  });
}

/** The answer to a `hint`: how many were kept, and (when some were refused as too far ahead of the stand-in's clock) the largest such lead. */
export function decodeHintResponse(body: unknown): { kept: number; aheadMs?: number } {
  const b = body as { kept?: unknown; aheadMs?: unknown } | null;
  if (typeof b?.kept !== 'number') throw new ClusterError('PEER_BAD_RESPONSE', 'hint response has the wrong shape');
  return typeof b.aheadMs === 'number' ? { kept: b.kept, aheadMs: b.aheadMs } : { kept: b.kept };
}

export function decodeScanResponse(body: unknown): { records: StoredRecord[]; more: boolean } {
  const b = body as { records?: unknown; more?: unknown } | null;
  if (b === null || typeof b !== 'object' || typeof b.more !== 'boolean') {
    throw new ClusterError('PEER_BAD_RESPONSE', 'scan response has the wrong shape');
  }
  try {
    return { records: validateRecords(b.records, MAX_SCAN_LIMIT + 1), more: b.more };
  } catch (e) {
    throw new ClusterError('PEER_BAD_RESPONSE', 'scan response holds an invalid record', { cause: e });
  }
}

/** Bytes a record takes in a request, as an upper bound: value, key (UTF-8), content type, and the version and framing. */
export function recordBytes(r: StoredRecord): number {
  return r.value.byteLength + 3 * r.key.length + (r.contentType?.length ?? 0) + 64;
}
