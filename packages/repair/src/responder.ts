import type { BucketEntry, Store, StoredRecord } from '@hearsay/storage';
import { BUCKETS_PER_READ, fromStore, isRepairError, RepairError } from './errors.ts';
import { Fingerprinter, unpackFingerprints } from './fingerprint.ts';
import {
  decodeRequest, encodeMessage, fromGaps, HASH_BYTES_MAX, HASH_BYTES_MIN, KEY_HASH_BYTES, MESSAGE_BYTES_MAX, MessageType,
} from './messages.ts';
import type {
  BucketDiff, FetchRequest, LevelRequest, OpenRequest, RepairReply, RepairRequest, SummariesRequest,
} from './messages.ts';
import { rangeDepth } from './range.ts';
import { RangeTree } from './tree.ts';
import { decodeRecords, encodeRecords, recordWireBytes } from './wire-record.ts';

export interface RepairResponderOptions {
  /** Trees kept between a session's requests. Default 8. */
  readonly maxSessions?: number;
  /** A cached tree unused this long is dropped. Default 60 s. */
  readonly sessionTtlMs?: number;
  /** Leaves (buckets) of all cached trees together; 32 bytes each, twice. Default 2^18 (~16 MiB). */
  readonly maxCachedLeaves?: number;
  /** Keys of reported entries kept for the Fetch that follows (all sessions together). Default 2^18. */
  readonly maxCachedKeys?: number;
  /** Larger requests are refused with MESSAGE_TOO_LARGE. Default 32 MiB. */
  readonly maxMessageBytes?: number;
}

/**
 * The side of a session that answers. Mount `handle` on the internode route:
 * body in, body out. It never rejects: a malformed request or a store failure
 * gets a Failed reply carrying the error code.
 */
export interface RepairResponder {
  handle(body: Uint8Array, nowMs: number): Promise<Uint8Array>;
}

/** Largest Fetched reply a peer may ask for. */
const FETCH_REPLY_BYTES_MAX = 16 * 1024 * 1024;
const GET_RECORDS_GROUP = 64;

interface Cached<T> {
  readonly value: T;
  readonly weight: number;
  expiresAtMs: number;
}

/**
 * Bounded, expiring per-session state: at most `maxEntries` sessions and
 * `maxWeight` in total (buckets of cached trees, keys of cached summaries),
 * each dropped `ttlMs` after its last use, oldest first when a bound is hit.
 * Every cache here is an optimisation: a miss re-reads the store, which is
 * also correct (see docs/repair.md), only slower.
 */
class SessionCache<T> {
  private readonly entries = new Map<string, Cached<T>>();
  private weight = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly maxWeight: number,
    private readonly weigh: (value: T) => number,
  ) {}

  get(key: string, nowMs: number): T | undefined {
    this.expire(nowMs);
    const hit = this.entries.get(key);
    if (hit === undefined) return undefined;
    hit.expiresAtMs = nowMs + this.ttlMs;
    return hit.value;
  }

  put(key: string, value: T, nowMs: number): void {
    this.expire(nowMs);
    this.delete(key);
    const weight = this.weigh(value);
    if (this.maxEntries === 0 || weight > this.maxWeight) return;
    while (this.entries.size >= this.maxEntries || this.weight + weight > this.maxWeight) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
    this.entries.set(key, { value, weight, expiresAtMs: nowMs + this.ttlMs });
    this.weight += weight;
  }

  private delete(key: string): void {
    const e = this.entries.get(key);
    if (e !== undefined) {
      this.entries.delete(key);
      this.weight -= e.weight;
    }
  }

  private expire(nowMs: number): void {
    for (const [key, e] of this.entries) if (e.expiresAtMs <= nowMs) this.delete(key);
  }
}

/** Keys of the responder's unmatched entries of a session's latest Summaries batch: bucket -> key hash -> keys. */
type BatchKeys = Map<number, Map<bigint, string[]>>;

interface Caches {
  readonly trees: SessionCache<RangeTree>;
  readonly keys: SessionCache<BatchKeys>;
  readonly nowMs: number;
}

function batchKeyCount(keys: BatchKeys): number {
  let n = 0;
  for (const perBucket of keys.values()) for (const list of perBucket.values()) n += list.length;
  return n;
}

function cacheKey(salt: Uint8Array, from: number, to: number): string {
  return `${Buffer.from(salt).toString('hex')}:${from}:${to}`;
}

/**
 * A responder with bounded, expiring per-session caches (see SessionCache):
 * the session's tree, built at its first Level request, and the keys of the
 * entries its latest SummaryDiff reported, which the Fetch that follows asks
 * for (saving a second read of those buckets).
 */
export function createRepairResponder(store: Store, options: RepairResponderOptions = {}): RepairResponder {
  const maxSessions = options.maxSessions ?? 8;
  const ttlMs = options.sessionTtlMs ?? 60_000;
  const maxLeaves = options.maxCachedLeaves ?? 1 << 18;
  const maxKeys = options.maxCachedKeys ?? 1 << 18;
  const maxMessageBytes = options.maxMessageBytes ?? MESSAGE_BYTES_MAX;
  for (const [name, v] of [['maxSessions', maxSessions], ['sessionTtlMs', ttlMs], ['maxCachedLeaves', maxLeaves], ['maxCachedKeys', maxKeys], ['maxMessageBytes', maxMessageBytes]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RepairError('INVALID_ARGUMENT', `${name} must be an integer >= 0`);
  }
  const trees = new SessionCache<RangeTree>(maxSessions, ttlMs, maxLeaves, (tree) => tree.leafCount);
  const keys = new SessionCache<BatchKeys>(maxSessions, ttlMs, maxKeys, batchKeyCount);
  return { handle: (body, nowMs) => respond(store, body, maxMessageBytes, { trees, keys, nowMs }) };
}

/** A stateless responder: every Level request rebuilds the range's tree (fine for small ranges). */
export function handleRepairRequest(store: Store, body: Uint8Array): Promise<Uint8Array> {
  return respond(store, body, MESSAGE_BYTES_MAX, undefined);
}

async function respond(store: Store, body: Uint8Array, maxBytes: number, caches: Caches | undefined): Promise<Uint8Array> {
  let reply: RepairReply;
  try {
    reply = await answer(store, decodeRequest(body, maxBytes), caches);
  } catch (e) {
    reply = isRepairError(e)
      ? { t: MessageType.Failed, code: e.code, message: e.message }
      : { t: MessageType.Failed, code: 'INTERNAL', message: String((e as Error)?.message ?? e) };
  }
  return encodeMessage(reply);
}

function checkBits(store: Store, bits: number): void {
  if (bits !== store.bucketBits) {
    throw new RepairError('BUCKET_BITS_MISMATCH', `peer has bucketBits ${bits}, this store ${store.bucketBits}`);
  }
}

async function answer(store: Store, request: RepairRequest, caches: Caches | undefined): Promise<RepairReply> {
  switch (request.t) {
    case MessageType.Open:
      return answerOpen(store, request);
    case MessageType.Level:
      return answerLevel(store, request, caches);
    case MessageType.Summaries:
      return answerSummaries(store, request, caches);
    case MessageType.Push: {
      const records = decodeRecords(request);
      // Each record on its own: one the store refuses (too far ahead) must not stop the others.
      const outcomes = await fromStore(() => store.applyEach(records));
      let applied = 0;
      let refused = 0;
      for (const o of outcomes) {
        if (o.status === 'applied') applied++;
        else if (o.status === 'refused') refused++;
      }
      return { t: MessageType.Pushed, applied, refused };
    }
    case MessageType.Fetch:
      return answerFetch(store, request, caches);
    default: {
      const never: never = request;
      throw new RepairError('INTERNAL', `unhandled request ${String(never)}`);
    }
  }
}

async function buildTree(store: Store, from: number, to: number, salt: Uint8Array): Promise<RangeTree> {
  const digests = await fromStore(() => store.bucketDigests(from, to));
  return RangeTree.build(digests, salt);
}

async function answerOpen(store: Store, r: OpenRequest): Promise<RepairReply> {
  checkBits(store, r.bits);
  rangeDepth(r.from, r.to, r.bits);
  // Our clock before our digests: the cut-off promise rests on this order. A
  // reading, not a stamp: a store waiting for its wall clock to catch up
  // (storage's CLOCK_AHEAD) still answers repair.
  const clockMs = store.clockStatus().readingMs;
  const digests = await fromStore(() => store.bucketDigests(r.from, r.to));
  return { t: MessageType.Opened, root: RangeTree.flatRoot(digests, r.salt), nowMs: clockMs };
}

async function answerLevel(store: Store, r: LevelRequest, caches: Caches | undefined): Promise<RepairReply> {
  checkBits(store, r.bits);
  const depth = rangeDepth(r.from, r.to, r.bits);
  if (r.hb < HASH_BYTES_MIN || r.hb > HASH_BYTES_MAX) throw new RepairError('MALFORMED_MESSAGE', `hb must be ${HASH_BYTES_MIN}..${HASH_BYTES_MAX}`);
  if (r.span < 1 || r.level < r.span || r.level > depth) {
    throw new RepairError('MALFORMED_MESSAGE', `level ${r.level} span ${r.span} does not fit depth ${depth}`);
  }
  const parents = fromGaps(r.parents, 2 ** (r.level - r.span), 'parents');
  const key = cacheKey(r.salt, r.from, r.to);
  let tree = caches?.trees.get(key, caches.nowMs);
  if (tree === undefined) {
    tree = await buildTree(store, r.from, r.to, r.salt);
    caches?.trees.put(key, tree, caches.nowMs);
  }
  return { t: MessageType.LevelHashes, hashes: tree.descendantHashes(r.level, r.span, parents, r.hb) };
}

async function answerSummaries(store: Store, r: SummariesRequest, caches: Caches | undefined): Promise<RepairReply> {
  checkBits(store, r.bits);
  const buckets = fromGaps(r.buckets, 2 ** r.bits, 'buckets');
  const fingerprints = new Fingerprinter(r.salt);
  const nodes: string[] = [];
  const nodeIndex = new Map<string, number>();
  const perBucket: { missing: number[]; unmatched: BucketEntry[] }[] = [];
  let base = 0;
  const allEntries: BucketEntry[][] = [];
  for (let i = 0; i < buckets.length; i += BUCKETS_PER_READ) {
    const group = buckets.slice(i, i + BUCKETS_PER_READ);
    allEntries.push(...await fromStore(() => store.bucketEntriesMany(group)));
  }
  for (let i = 0; i < buckets.length; i++) {
    const entries = allEntries[i] as BucketEntry[];
    const theirs = unpackFingerprints(r.fps[i] as Uint8Array);
    const theirSet = new Set(theirs);
    const mineSet = new Set<number>();
    const unmatched: BucketEntry[] = [];
    for (const e of entries) {
      const fp = fingerprints.of(e);
      mineSet.add(fp);
      if (!theirSet.has(fp)) {
        unmatched.push(e);
        if (e.version.ms > base) base = e.version.ms;
        if (!nodeIndex.has(e.version.node)) {
          nodeIndex.set(e.version.node, nodes.length);
          nodes.push(e.version.node);
        }
      }
    }
    const missing: number[] = [];
    for (let j = 0; j < theirs.length; j++) if (!mineSet.has(theirs[j] as number)) missing.push(j);
    perBucket.push({ missing, unmatched });
  }
  if (caches !== undefined) {
    const keys: BatchKeys = new Map();
    perBucket.forEach(({ unmatched }, i) => {
      const byHash = new Map<bigint, string[]>();
      for (const e of unmatched) {
        const h = BigInt.asUintN(64, e.keyHash);
        const list = byHash.get(h);
        if (list === undefined) byHash.set(h, [e.key]);
        else list.push(e.key);
      }
      keys.set(buckets[i] as number, byHash);
    });
    caches.keys.put(Buffer.from(r.salt).toString('hex'), keys, caches.nowMs);
  }
  const diffs: BucketDiff[] = perBucket.map(({ missing, unmatched }) => {
    const hashes = Buffer.allocUnsafe(unmatched.length * KEY_HASH_BYTES);
    const meta: number[] = [];
    unmatched.forEach((e, j) => {
      hashes.writeBigUInt64BE(BigInt.asUintN(64, e.keyHash), j * KEY_HASH_BYTES);
      meta.push(base - e.version.ms, e.version.counter, nodeIndex.get(e.version.node) as number, e.tombstone ? 1 : 0);
    });
    // Gap-encode missing indices: ascending by construction.
    const gaps = missing.map((v, j) => (j === 0 ? v : v - (missing[j - 1] as number)));
    return [gaps, hashes, meta] as const;
  });
  return { t: MessageType.SummaryDiff, nodes, base, diffs };
}

async function answerFetch(store: Store, r: FetchRequest, caches: Caches | undefined): Promise<RepairReply> {
  checkBits(store, r.bits);
  const buckets = fromGaps(r.buckets, 2 ** r.bits, 'buckets');
  const maxBytes = Math.min(r.maxBytes, FETCH_REPLY_BYTES_MAX);
  const records: StoredRecord[] = [];
  let bytes = 0;
  let served = 0;
  const batchKeys = r.salt === undefined ? undefined : caches?.keys.get(Buffer.from(r.salt).toString('hex'), caches.nowMs);
  const wantedOf = (i: number): bigint[] => {
    const bin = r.hashes[i] as Uint8Array;
    const view = Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength);
    const out: bigint[] = [];
    for (let j = 0; j < bin.length / KEY_HASH_BYTES; j++) out.push(view.readBigUInt64BE(j * KEY_HASH_BYTES));
    return out;
  };
  // The SummaryDiff just sent named these keys; read a bucket only when it did not.
  const cachedKeys = (i: number, wanted: readonly bigint[]): Map<bigint, string[]> | undefined => {
    const byHash = batchKeys?.get(buckets[i] as number);
    return byHash !== undefined && wanted.every((h) => byHash.has(h)) ? byHash : undefined;
  };
  let read: (BucketEntry[] | undefined)[] = [];
  for (let i = 0; i < buckets.length; i++) {
    const wanted = wantedOf(i);
    if (i % BUCKETS_PER_READ === 0) {
      const group = buckets.slice(i, i + BUCKETS_PER_READ);
      const uncached = group.filter((_, g) => cachedKeys(i + g, wantedOf(i + g)) === undefined);
      const fresh = uncached.length === 0 ? [] : await fromStore(() => store.bucketEntriesMany(uncached));
      let f = 0;
      read = group.map((_, g) => (cachedKeys(i + g, wantedOf(i + g)) === undefined ? fresh[f++] : undefined));
    }
    const keysByHash = cachedKeys(i, wanted) ?? new Map<bigint, string[]>();
    for (const e of read[i % BUCKETS_PER_READ] ?? []) {
      const h = BigInt.asUintN(64, e.keyHash);
      const list = keysByHash.get(h);
      if (list === undefined) keysByHash.set(h, [e.key]);
      else list.push(e.key);
    }
    for (let g = 0; g < wanted.length; g += GET_RECORDS_GROUP) {
      const group = wanted.slice(g, g + GET_RECORDS_GROUP);
      const keys = group.flatMap((h) => keysByHash.get(h) ?? []);
      const found = await fromStore(() => store.getRecords(keys));
      const byKey = new Map<string, StoredRecord>();
      found.forEach((rec) => { if (rec !== undefined) byKey.set(rec.key, rec); });
      for (const h of group) {
        if (served > 0 && bytes >= maxBytes) return { t: MessageType.Fetched, served, ...encodeRecords(records) };
        for (const key of keysByHash.get(h) ?? []) {
          const rec = byKey.get(key);
          if (rec === undefined) continue;
          records.push(rec);
          bytes += recordWireBytes(rec);
        }
        served++;
      }
    }
  }
  return { t: MessageType.Fetched, served, ...encodeRecords(records) };
}
