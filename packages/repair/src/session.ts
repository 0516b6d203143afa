import { sleep, type Clock } from '@hearsay/clock';
import { bucketOf, compareEntries, hashKey } from '@hearsay/storage';
import type { BucketEntry, Store, StoredRecord, VersionedEntry } from '@hearsay/storage';
import { BUCKETS_PER_READ, fromStore, isRepairError, RepairError } from './errors.ts';
import { Fingerprinter } from './fingerprint.ts';
import {
  decodeReply, encodeMessage, fromGaps, HASH_BYTES_MAX, HASH_BYTES_MIN, KEY_HASH_BYTES, LEVEL_PARENTS_MAX, MessageType,
  PROTOCOL_VERSION, SALT_BYTES, SUMMARY_BUCKETS_MAX, FETCH_HASHES_MAX, toGaps,
} from './messages.ts';
import type { RepairReply, RepairRequest, SummaryDiffReply } from './messages.ts';
import { rangeDepth } from './range.ts';
import { TokenBucket } from './token-bucket.ts';
import { NODE_HASH_BYTES, RangeTree } from './tree.ts';
import { decodeRecords, encodeRecords, recordWireBytes } from './wire-record.ts';

/**
 * The initiator's view of the other replica. `request` delivers one encoded
 * request (a MessagePack body, see messages.ts) to the peer's responder and
 * resolves with its encoded reply; it rejects only when the transport fails.
 * The session sends one request at a time and never reuses a body after the
 * call, so a transport may keep or transfer it.
 */
export interface RepairPeer {
  request(body: Uint8Array): Promise<Uint8Array>;
}

/** Bounds on what one session holds in memory and puts in one message. */
export interface RepairLimits {
  /** Bytes of each tree-node hash on the wire below the root (4..32). Default 8. */
  readonly hashBytes: number;
  /** Parents per Level request (each costs 4 * hashBytes in the reply). Default 2048. */
  readonly levelParentsPerRequest: number;
  /** Differing buckets are summarised in batches of about this many entries. Default 8192. */
  readonly summaryEntriesPerBatch: number;
  /** ... and at most this many buckets. Default 1024. */
  readonly summaryBucketsPerBatch: number;
  /** Target size of a Push request or Fetched reply. Default 256 KiB. */
  readonly chunkBytes: number;
  /** Key hashes per Fetch request. Default 2048. */
  readonly fetchHashesPerRequest: number;
}

export const DEFAULT_REPAIR_LIMITS: RepairLimits = {
  hashBytes: 8,
  levelParentsPerRequest: 2048,
  summaryEntriesPerBatch: 8192,
  summaryBucketsPerBatch: 1024,
  chunkBytes: 256 * 1024,
  fetchHashesPerRequest: 2048,
};

export interface RepairStats {
  /** Buckets in the range: all of them are compared, through the tree. */
  bucketsCompared: number;
  /** Leaf buckets whose digests differed. */
  bucketsDiffered: number;
  /** Tree nodes whose hashes were compared, the root included. */
  nodesCompared: number;
  /** Local entries of differing buckets sent as fingerprints. */
  entriesSummarized: number;
  /** Records sent to the peer (it lacked them or held older versions). */
  keysSent: number;
  /** Records received from the peer. */
  keysReceived: number;
  /** Received records that changed the local store. */
  keysApplied: number;
  /**
   * Records a store refused, either side: versions more than its maximum
   * clock offset ahead of its clock (storage's VERSION_AHEAD). The range
   * still differs where they are; the other records were merged.
   */
  keysRefused: number;
  /** MessagePack bytes of all requests. */
  bytesSent: number;
  /** MessagePack bytes of all replies. */
  bytesReceived: number;
  roundTrips: number;
  /** Session time as read from the clock. */
  durationMs: number;
  /** Part of durationMs spent waiting for the rate limit. */
  waitedMs: number;
}

/** All counters at zero: the start of a session's stats, or of a sum of several. */
export function emptyRepairStats(): RepairStats {
  return {
    bucketsCompared: 0,
    bucketsDiffered: 0,
    nodesCompared: 0,
    entriesSummarized: 0,
    keysSent: 0,
    keysReceived: 0,
    keysApplied: 0,
    keysRefused: 0,
    bytesSent: 0,
    bytesReceived: 0,
    roundTrips: 0,
    durationMs: 0,
    waitedMs: 0,
  };
}

/** Adds every counter of `stats` into `total` (durations add up too) and returns `total`: the sum over several sessions. */
export function addRepairStats(total: RepairStats, stats: Readonly<RepairStats>): RepairStats {
  for (const name of Object.keys(total) as (keyof RepairStats)[]) total[name] += stats[name];
  return total;
}

/**
 * Progress of one session, which a caller can draw as a bar: in phase
 * `compare`, `done`/`total` count tree levels; in phase `exchange`, differing
 * buckets reconciled; `done` is the last event.
 */
export interface SessionProgress {
  readonly phase: 'compare' | 'exchange' | 'done';
  readonly done: number;
  readonly total: number;
  readonly stats: Readonly<RepairStats>;
}

export interface RepairResult {
  readonly fromBucket: number;
  readonly toBucket: number;
  /** The roots were equal: the replicas agreed on the range when the session began, nothing was sent. */
  readonly inSync: boolean;
  /**
   * Tombstone-safety point (HLC ms): the smaller of the two replicas' clocks,
   * each read before that replica read its digests. Every record either
   * replica held in the range when the session began is, when this result is
   * returned, held by both at that version or a newer one. See docs/repair.md.
   */
  readonly cutoffMs: number;
  readonly stats: RepairStats;
}

export interface RepairSessionInput {
  readonly local: Store;
  readonly remote: RepairPeer;
  readonly fromBucket: number;
  readonly toBucket: number;
  /** SALT_BYTES bytes unique to this session (random in production, seeded in tests). */
  readonly salt: Uint8Array;
  /** Read for stats and the rate limit; the rate limit waits on its timers. */
  readonly clock: Clock;
  /** Stops the session between two requests and cuts a rate-limit wait short; it then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Average bytes per second on the wire, both directions together. Unlimited when left out. */
  readonly rateLimitBytesPerSec?: number;
  /** Burst allowance of the rate limit. Default: one second's worth. */
  readonly rateLimitBurstBytes?: number;
  readonly onProgress?: (progress: SessionProgress) => void;
  readonly limits?: Partial<RepairLimits>;
}

function resolveLimits(partial: Partial<RepairLimits> | undefined): RepairLimits {
  const l = { ...DEFAULT_REPAIR_LIMITS, ...partial };
  const check = (name: keyof RepairLimits, min: number, max: number): void => {
    const v = l[name];
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RepairError('INVALID_ARGUMENT', `limits.${name} must be an integer in ${min}..${max}`);
    }
  };
  check('hashBytes', HASH_BYTES_MIN, HASH_BYTES_MAX);
  check('levelParentsPerRequest', 1, LEVEL_PARENTS_MAX);
  check('summaryEntriesPerBatch', 1, 1 << 20);
  check('summaryBucketsPerBatch', 1, SUMMARY_BUCKETS_MAX);
  check('chunkBytes', 1024, 16 * 1024 * 1024);
  check('fetchHashesPerRequest', 1, FETCH_HASHES_MAX);
  return l;
}

/** Keys read from the store per getRecords call while building Push chunks. */
const GET_RECORDS_GROUP = 64;

function sameBytes(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

function unexpected(message: string): RepairError {
  return new RepairError('UNEXPECTED_REPLY', `unexpected repair reply: ${message}`);
}

/**
 * Runs one repair session for [fromBucket, toBucket) as the initiator,
 * against `remote`'s responder, and resolves when both replicas hold, for
 * every key that differed, the newer of the two records. Rejects with a
 * RepairError; records already exchanged stay applied (they are LWW merges,
 * so a failed session never leaves either side worse off).
 *
 * The protocol (docs/repair.md):
 *  1. Open: compare the range hashes (RangeTree.flatRoot). Equal: done, one
 *     round trip of ~100 bytes.
 *  2. Level: below the nodes that differ, fetch the peer's truncated hashes
 *     two levels down per round trip (chunked) until the leaf buckets.
 *  3. Per batch of differing buckets: send entry fingerprints; the peer
 *     answers which of ours it lacks and its entries we lack.
 *  4. Push our newer records, Fetch theirs; both applied by LWW merge.
 *
 * Pure: no sockets, no timers, no wall clock; time comes from `clock`.
 */
export async function repairRange(input: RepairSessionInput): Promise<RepairResult> {
  const { local, remote, fromBucket: from, toBucket: to, salt, clock } = input;
  const limits = resolveLimits(input.limits);
  const bits = local.bucketBits;
  const depth = rangeDepth(from, to, bits);
  if (!(salt instanceof Uint8Array) || salt.length !== SALT_BYTES) {
    throw new RepairError('INVALID_ARGUMENT', `salt must be ${SALT_BYTES} bytes`);
  }
  const hb = limits.hashBytes;
  const startedMs = clock.now();
  let limiter: TokenBucket | undefined;
  if (input.rateLimitBytesPerSec !== undefined) {
    const rate = input.rateLimitBytesPerSec;
    const burst = input.rateLimitBurstBytes ?? rate;
    if (!(rate > 0) || !Number.isFinite(rate) || !(burst > 0) || !Number.isFinite(burst)) {
      throw new RepairError('INVALID_ARGUMENT', 'rateLimitBytesPerSec and rateLimitBurstBytes must be positive numbers');
    }
    limiter = new TokenBucket(rate, burst, startedMs);
  }

  const stats: RepairStats = { ...emptyRepairStats(), bucketsCompared: to - from };
  const progress = (phase: SessionProgress['phase'], done: number, total: number): void => {
    stats.durationMs = clock.now() - startedMs;
    input.onProgress?.({ phase, done, total, stats: { ...stats } });
  };

  async function call<T extends RepairReply['t']>(request: RepairRequest, expected: T): Promise<Extract<RepairReply, { t: T }>> {
    const body = encodeMessage(request);
    if (limiter !== undefined) {
      const waitMs = limiter.take(body.length, clock.now());
      if (waitMs > 0) {
        stats.waitedMs += waitMs;
        await sleep(clock, waitMs, input.signal);
      }
    }
    input.signal?.throwIfAborted();
    stats.bytesSent += body.length;
    stats.roundTrips++;
    let replyBody: Uint8Array;
    try {
      replyBody = await remote.request(body);
    } catch (e) {
      if (isRepairError(e)) throw e;
      throw new RepairError('TRANSPORT_FAILED', `repair request failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    if (!(replyBody instanceof Uint8Array)) throw unexpected('transport returned no bytes');
    stats.bytesReceived += replyBody.length;
    limiter?.take(replyBody.length, clock.now());
    const reply = decodeReply(replyBody);
    if (reply.t === MessageType.Failed) {
      throw new RepairError('REMOTE_ERROR', `peer failed: ${reply.code}: ${reply.message}`, { remoteCode: reply.code });
    }
    if (reply.t !== expected) throw unexpected(`type ${reply.t}, expected ${expected}`);
    return reply as Extract<RepairReply, { t: T }>;
  }

  // 1. Range hashes. Our clock is read before our digests, the peer does the same
  // (a reading, not a stamp: it works while the store waits out a clock ahead).
  const localStartMs = local.clockStatus().readingMs;
  const [digests, opened] = await Promise.all([
    fromStore(() => local.bucketDigests(from, to)),
    call({ t: MessageType.Open, v: PROTOCOL_VERSION, from, to, bits, salt }, MessageType.Opened),
  ]);
  if (digests.length !== to - from) throw new RepairError('STORE_FAILED', 'bucketDigests returned the wrong count');
  if (opened.root.length !== NODE_HASH_BYTES) throw unexpected('range hash of the wrong length');
  const cutoffMs = Math.min(localStartMs, opened.nowMs);
  stats.nodesCompared = 1;
  const finish = (inSync: boolean): RepairResult => {
    progress('done', 1, 1);
    return { fromBucket: from, toBucket: to, inSync, cutoffMs, stats };
  };
  if (sameBytes(RangeTree.flatRoot(digests, salt), 0, opened.root, 0, NODE_HASH_BYTES)) return finish(true);
  progress('compare', 0, depth);

  // 2. Descend the Merkle tree (built from the same digests) only below nodes
  // that differ: two levels per round trip (one first when the depth is odd).
  const tree = RangeTree.build(digests, salt);
  let differing: number[] = [0];
  let level = 0;
  while (level < depth && differing.length > 0) {
    const span = (depth - level) % 2 === 1 ? 1 : 2;
    const fan = 2 ** span;
    const target = level + span;
    const next: number[] = [];
    for (let i = 0; i < differing.length; i += limits.levelParentsPerRequest) {
      const parents = differing.slice(i, i + limits.levelParentsPerRequest);
      const reply = await call(
        { t: MessageType.Level, from, to, bits, salt, hb, level: target, span, parents: toGaps(parents) },
        MessageType.LevelHashes,
      );
      if (reply.hashes.length !== parents.length * fan * hb) throw unexpected('level hashes of the wrong length');
      const mine = tree.descendantHashes(target, span, parents, hb);
      for (let j = 0; j < parents.length * fan; j++) {
        if (!sameBytes(mine, j * hb, reply.hashes, j * hb, hb)) next.push((parents[Math.floor(j / fan)] as number) * fan + (j % fan));
      }
      stats.nodesCompared += parents.length * fan;
    }
    differing = next;
    level = target;
    progress('compare', level, depth);
  }
  const buckets = differing.map((i) => from + i);
  stats.bucketsDiffered = buckets.length;

  // 3 + 4. Reconcile differing buckets in bounded batches.
  const fingerprints = new Fingerprinter(salt);
  let nextBucket = 0;
  progress('exchange', 0, buckets.length);
  while (nextBucket < buckets.length) {
    const batch: { bucket: number; entries: BucketEntry[] }[] = [];
    let entryCount = 0;
    // Read a few buckets at a time; a batch may pass the entry limit by up to
    // BUCKETS_PER_READ buckets.
    while (nextBucket < buckets.length && batch.length < limits.summaryBucketsPerBatch && entryCount < limits.summaryEntriesPerBatch) {
      const group = buckets.slice(nextBucket, nextBucket + Math.min(BUCKETS_PER_READ, limits.summaryBucketsPerBatch - batch.length));
      nextBucket += group.length;
      const read = await fromStore(() => local.bucketEntriesMany(group));
      group.forEach((bucket, i) => {
        const entries = read[i] as BucketEntry[];
        batch.push({ bucket, entries });
        entryCount += entries.length;
      });
    }
    stats.entriesSummarized += entryCount;
    const diff = await call(
      {
        t: MessageType.Summaries,
        bits,
        salt,
        buckets: toGaps(batch.map((b) => b.bucket)),
        fps: batch.map((b) => fingerprints.pack(b.entries)),
      },
      MessageType.SummaryDiff,
    );
    const { pushKeys, fetch } = decide(batch, diff, bits);
    await push(pushKeys);
    await fetchFrom(fetch);
    progress('exchange', nextBucket, buckets.length);
  }
  return finish(false);

  async function push(keys: readonly string[]): Promise<void> {
    let chunk: StoredRecord[] = [];
    let chunkBytes = 0;
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const pushed = await call({ t: MessageType.Push, ...encodeRecords(chunk) }, MessageType.Pushed);
      stats.keysSent += chunk.length;
      stats.keysRefused += pushed.refused ?? 0;
      chunk = [];
      chunkBytes = 0;
    };
    for (let i = 0; i < keys.length; i += GET_RECORDS_GROUP) {
      const records = await fromStore(() => local.getRecords(keys.slice(i, i + GET_RECORDS_GROUP)));
      for (const r of records) {
        if (r === undefined) continue; // purged since we read the entry: nothing to send
        chunk.push(r);
        chunkBytes += recordWireBytes(r);
        if (chunkBytes >= limits.chunkBytes) await flush();
      }
    }
    await flush();
  }

  async function fetchFrom(wanted: readonly { bucket: number; keyHash: bigint }[]): Promise<void> {
    let position = 0;
    while (position < wanted.length) {
      const slice = wanted.slice(position, position + limits.fetchHashesPerRequest);
      const bucketsAsked: number[] = [];
      const hashes: Uint8Array[] = [];
      for (let i = 0; i < slice.length;) {
        const bucket = (slice[i] as { bucket: number }).bucket;
        let j = i;
        while (j < slice.length && (slice[j] as { bucket: number }).bucket === bucket) j++;
        const bin = Buffer.allocUnsafe((j - i) * KEY_HASH_BYTES);
        for (let k = i; k < j; k++) bin.writeBigUInt64BE((slice[k] as { keyHash: bigint }).keyHash, (k - i) * KEY_HASH_BYTES);
        bucketsAsked.push(bucket);
        hashes.push(bin);
        i = j;
      }
      const reply = await call(
        { t: MessageType.Fetch, bits, maxBytes: limits.chunkBytes, buckets: toGaps(bucketsAsked), hashes, salt },
        MessageType.Fetched,
      );
      if (reply.served < 1 || reply.served > slice.length) throw unexpected(`fetch served ${reply.served} of ${slice.length}`);
      const allowed = new Set(bucketsAsked);
      const records = decodeRecords(reply);
      for (const r of records) {
        if (!allowed.has(bucketOf(hashKey(r.key), bits))) {
          throw new RepairError('INVALID_RECORD', 'peer sent a record outside the buckets asked for');
        }
      }
      // Each record on its own: one our store refuses (too far ahead) must not stop the others.
      const outcomes = await fromStore(() => local.applyEach(records));
      stats.keysReceived += records.length;
      for (const o of outcomes) {
        if (o.status === 'applied') stats.keysApplied++;
        else if (o.status === 'refused') stats.keysRefused++;
      }
      position += reply.served;
    }
  }
}

/**
 * From our entries and the peer's SummaryDiff, the keys to push (ours wins
 * or theirs is missing) and the key hashes to fetch (theirs wins or ours is
 * missing). Who wins is last-write-wins on what the entries hold (storage's
 * `compareEntries`: version, then tombstone over live), which never
 * disagrees with the stores' own merge, so a side sends only what the other
 * will keep.
 */
function decide(
  batch: readonly { bucket: number; entries: readonly BucketEntry[] }[],
  diff: SummaryDiffReply,
  bits: number,
): { pushKeys: string[]; fetch: { bucket: number; keyHash: bigint }[] } {
  if (diff.diffs.length !== batch.length) throw unexpected(`${diff.diffs.length} bucket diffs for ${batch.length} buckets`);
  const pushKeys: string[] = [];
  const fetch: { bucket: number; keyHash: bigint }[] = [];
  for (let i = 0; i < batch.length; i++) {
    const { bucket, entries } = batch[i] as { bucket: number; entries: readonly BucketEntry[] };
    const [missingGaps, hashes, meta] = diff.diffs[i] as SummaryDiffReply['diffs'][number];
    const ours = new Map<bigint, BucketEntry[]>();
    for (const index of fromGaps(missingGaps, entries.length, 'missing')) {
      const e = entries[index] as BucketEntry;
      const list = ours.get(e.keyHash);
      if (list === undefined) ours.set(e.keyHash, [e]);
      else list.push(e);
    }
    const theirs = new Map<bigint, VersionedEntry[]>();
    const view = Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength);
    for (let j = 0; j < hashes.length / KEY_HASH_BYTES; j++) {
      const keyHash = view.readBigUInt64BE(j * KEY_HASH_BYTES);
      if (bucketOf(keyHash, bits) !== bucket) throw unexpected('an entry outside its bucket');
      const ms = diff.base - (meta[4 * j] as number);
      if (ms < 0) throw unexpected('an entry with a negative ms');
      const entry: VersionedEntry = {
        version: { ms, counter: meta[4 * j + 1] as number, node: diff.nodes[meta[4 * j + 2] as number] as string },
        tombstone: meta[4 * j + 3] === 1,
      };
      const list = theirs.get(keyHash);
      if (list === undefined) theirs.set(keyHash, [entry]);
      else list.push(entry);
    }
    for (const [keyHash, mine] of ours) {
      const their = theirs.get(keyHash);
      if (their === undefined) {
        for (const e of mine) pushKeys.push(e.key);
      } else if (mine.length === 1 && their.length === 1) {
        const order = compareEntries(mine[0] as BucketEntry, their[0] as VersionedEntry);
        if (order >= 0) pushKeys.push((mine[0] as BucketEntry).key);
        // Equal entries cannot differ in fingerprint unless two keys share the hash:
        // then both are swapped and each store's merge sorts it out.
        if (order <= 0) fetch.push({ bucket, keyHash });
      } else {
        // Different keys share a 64-bit hash: send ours, fetch theirs, let LWW sort it out.
        for (const e of mine) pushKeys.push(e.key);
        fetch.push({ bucket, keyHash });
      }
    }
    for (const keyHash of theirs.keys()) if (!ours.has(keyHash)) fetch.push({ bucket, keyHash });
  }
  return { pushKeys, fetch };
}
