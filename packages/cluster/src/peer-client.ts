import type { StoredRecord } from '@hearsay/storage';
import { ClusterError } from './errors.ts';
import { internodePackr } from './internode-app.ts';
import { decodeHintResponse, decodeReadResponse, decodeScanResponse, decodeWriteResponse, recordBytes, type InternodeType } from './internode-messages.ts';
import type { PeerClient, PurgeRequest, ReplicaOutcome, ScanRequest, ScanResponse } from './peer.ts';
import type { Clock } from '@hearsay/clock';
import { decodeRing, encodeRing, type Ring } from './ring.ts';
import { decodeStreamPage, type StreamPage, type StreamRequest } from './stream.ts';

/**
 * Moves one encoded request to a peer and its encoded answer back: HTTP
 * (`http-transport.ts`) or the simulated network. Rejects with a
 * `ClusterError` (`PEER_*`) on failure; honours `signal`.
 */
export type InternodeTransport = (type: InternodeType, body: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>;

export interface PeerClientOptions {
  readonly clock: Clock;
  /** Per request. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** Requests in flight to this peer at once. Default 32. */
  readonly maxInFlight?: number;
  /** Requests waiting for a slot; past this a call fails at once with PEER_OVERLOADED. Default 1024. */
  readonly maxQueued?: number;
  /** Replication writes are coalesced into one request of up to this many records. Default 128; 1 disables batching. */
  readonly maxBatchRecords?: number;
  /**
   * Bytes of records in one request (writes, hints): a batch closes before
   * it would pass this, and a write of more is split over several requests.
   * A record larger than this travels alone. Keep it well under the
   * receivers' body limit (`batchBytesOf(maxBodyBytes)`). Default 4 MiB.
   */
  readonly maxBatchBytes?: number;
  /**
   * Bytes of writes queued or in flight to this peer. A write that finds
   * this many already queued fails at once with PEER_OVERLOADED (the
   * coordinator keeps a hint, or refuses the client's write with 503 BUSY
   * when too few replicas have room): a slow peer costs bounded memory.
   * Default 64 MiB.
   */
  readonly maxQueuedBytes?: number;
  /**
   * A peer whose oldest queued write has waited this long (not yet sent)
   * has no room either (`hasRoom` false), whatever the bytes: its queue
   * drains too slowly for a client's write to be answered in time, so the
   * coordinator refuses new writes with 503 BUSY instead of letting them
   * time out. Default: unbounded; the cluster node passes half its request
   * timeout.
   */
  readonly maxQueueDelayMs?: number;
  /** While a write to this peer is in flight, further writes wait up to this long to join a batch. Default 2 ms. */
  readonly batchDelayMs?: number;
  /**
   * Read requests in flight to this peer at once. Past this, `read` calls
   * queue and go together in one request (up to `maxBatchRecords` keys) as
   * soon as a read in flight answers — no timer, so a read is never delayed
   * by a batching delay. Default 2.
   */
  readonly maxReadsInFlight?: number;
}

interface PendingRead {
  readonly keys: readonly string[];
  readonly resolve: (records: (StoredRecord | undefined)[]) => void;
  readonly reject: (e: unknown) => void;
}

interface PendingWrite {
  readonly records: readonly StoredRecord[];
  readonly bytes: number;
  /** When it was queued (the client's clock). */
  readonly atMs: number;
  readonly resolve: (outcomes: ReplicaOutcome[]) => void;
  readonly reject: (e: unknown) => void;
  /** The peer's outcome of each record, filled in as the requests carrying them answer. */
  readonly outcomes: ReplicaOutcome[];
  /** Requests carrying some of its records that have not answered yet. */
  outstanding: number;
  /** Records handed to requests so far (a write larger than a batch is split). */
  taken: number;
  failed: boolean;
}

export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

// recordBytes lives with the message codecs (the stream pages size by it too); exported here as before.
export { recordBytes };

/**
 * A `PeerClient` over any transport, with a per-request deadline, a bounded
 * number of requests in flight and a bounded wait queue, and a small write
 * batcher: a write sent while another write to the same peer is in flight
 * waits (up to `batchDelayMs`, or until `maxBatchRecords` are pending) and
 * travels with the others in one request. Under no load a write goes at once.
 * Reads batch too, without a timer: at most `maxReadsInFlight` read requests
 * are in flight; reads issued meanwhile go together in the next one.
 */
export class InternodePeerClient implements PeerClient {
  readonly #transport: InternodeTransport;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #maxQueued: number;
  readonly #maxBatch: number;
  readonly #maxBatchBytes: number;
  readonly #maxQueuedBytes: number;
  readonly #maxQueueDelayMs: number;
  readonly #batchDelayMs: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];
  #pendingWrites: PendingWrite[] = [];
  /** Records and bytes not yet handed to a request. */
  #pendingRecords = 0;
  #pendingBytes = 0;
  /** Bytes of writes queued or in flight. */
  #queuedBytes = 0;
  #writesInFlight = 0;
  /** Bytes of write requests sent and not answered: at most two batches' worth (`#writeWindowBytes`). */
  #writeBytesInFlight = 0;
  #cancelFlush: (() => void) | undefined = undefined;
  #flushQueued = false;
  readonly #maxReadsInFlight: number;
  #pendingReads: PendingRead[] = [];
  #readsInFlight = 0;
  #readFlushQueued = false;
  /** Requests sent (after batching), for tests and metrics. */
  requestsSent = 0;
  /** Writes refused at once because `maxQueuedBytes` were queued (for metrics). */
  writesRefused = 0;

  constructor(transport: InternodeTransport, options: PeerClientOptions) {
    this.#transport = transport;
    this.#clock = options.clock;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#maxInFlight = options.maxInFlight ?? 32;
    this.#maxQueued = options.maxQueued ?? 1024;
    this.#maxBatch = Math.max(1, options.maxBatchRecords ?? 128);
    this.#maxBatchBytes = Math.max(1, options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES);
    this.#maxQueuedBytes = Math.max(1, options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES);
    this.#maxQueueDelayMs = options.maxQueueDelayMs ?? Infinity;
    this.#batchDelayMs = options.batchDelayMs ?? 2;
    this.#maxReadsInFlight = Math.max(1, options.maxReadsInFlight ?? 2);
  }

  /** Bytes of writes queued or in flight to this peer. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  hasRoom(): boolean {
    if (this.#queuedBytes >= this.#maxQueuedBytes || this.#pendingWrites.length >= this.#maxQueued) return false;
    const oldest = this.#pendingWrites[0];
    return oldest === undefined || this.#clock.now() - oldest.atMs < this.#maxQueueDelayMs;
  }

  write(records: readonly StoredRecord[]): Promise<ReplicaOutcome[]> {
    if (records.length === 0) return Promise.resolve([]);
    if (!this.hasRoom()) {
      this.writesRefused++;
      return Promise.reject(
        new ClusterError('PEER_OVERLOADED', `too much queued for this peer (${this.#queuedBytes} bytes, ${this.#pendingWrites.length} writes waiting)`),
      );
    }
    let bytes = 0;
    for (const r of records) bytes += recordBytes(r);
    return new Promise<ReplicaOutcome[]>((resolve, reject) => {
      const outcomes: ReplicaOutcome[] = new Array<ReplicaOutcome>(records.length).fill(null);
      this.#pendingWrites.push({ records, bytes, atMs: this.#clock.now(), resolve, reject, outcomes, outstanding: 0, taken: 0, failed: false });
      this.#pendingRecords += records.length;
      this.#pendingBytes += bytes;
      this.#queuedBytes += bytes;
      this.#scheduleFlush();
    });
  }

  read(keys: readonly string[]): Promise<(StoredRecord | undefined)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    if (this.#pendingReads.length >= this.#maxQueued) {
      return Promise.reject(new ClusterError('PEER_OVERLOADED', 'too many reads queued for this peer'));
    }
    return new Promise((resolve, reject) => {
      this.#pendingReads.push({ keys, resolve, reject });
      this.#scheduleReads();
    });
  }

  /** Same-tick reads travel together; beyond that, reads batch only while `maxReadsInFlight` are in flight. */
  #scheduleReads(): void {
    if (this.#readFlushQueued || this.#readsInFlight >= this.#maxReadsInFlight) return;
    this.#readFlushQueued = true;
    queueMicrotask(() => {
      this.#readFlushQueued = false;
      this.#flushReads();
    });
  }

  #flushReads(): void {
    while (this.#pendingReads.length > 0 && this.#readsInFlight < this.#maxReadsInFlight) {
      const batch: PendingRead[] = [];
      let n = 0;
      while (this.#pendingReads.length > 0 && (n === 0 || n + this.#pendingReads[0]!.keys.length <= this.#maxBatch)) {
        const r = this.#pendingReads.shift()!;
        batch.push(r);
        n += r.keys.length;
      }
      const keys = batch.length === 1 ? batch[0]!.keys : batch.flatMap((r) => r.keys);
      this.#readsInFlight++;
      this.#readAll(keys)
        .then(
          (records) => {
            let at = 0;
            for (const r of batch) {
              r.resolve(records.slice(at, at + r.keys.length));
              at += r.keys.length;
            }
          },
          (e: unknown) => {
            for (const r of batch) r.reject(e);
          },
        )
        .finally(() => {
          this.#readsInFlight--;
          if (this.#pendingReads.length > 0) this.#scheduleReads();
        });
    }
  }

  /**
   * Every key's record. A peer answers a prefix of the keys when the records
   * would make its answer too large (at least one each time); the rest are
   * asked for again.
   */
  async #readAll(keys: readonly string[]): Promise<(StoredRecord | undefined)[]> {
    const out: (StoredRecord | undefined)[] = [];
    while (out.length < keys.length) {
      const rest = out.length === 0 ? keys : keys.slice(out.length);
      out.push(...decodeReadResponse(await this.#call('read', { keys: rest }), rest.length));
    }
    return out;
  }

  async hint(target: string, records: readonly StoredRecord[]): Promise<void> {
    for (const chunk of chunksOf(records, this.#maxBatch, this.#maxBatchBytes)) {
      const { kept, aheadMs } = decodeHintResponse(await this.#call('hint', { target, records: chunk }));
      if (aheadMs !== undefined) {
        throw new ClusterError(
          'PEER_CLOCK_SKEW',
          `the stand-in refused hints whose versions are up to ${aheadMs} ms ahead of its clock, more than its maximum clock offset (clock skew)`,
        );
      }
      if (kept < chunk.length) throw new ClusterError('PEER_OVERLOADED', 'the stand-in is out of hint space for this target');
    }
  }

  async scan(request: ScanRequest): Promise<ScanResponse> {
    return decodeScanResponse(await this.#call('scan', request));
  }

  async repair(message: unknown, signal?: AbortSignal): Promise<unknown> {
    const answer = (await this.#call('repair', { message }, signal)) as { message?: unknown } | null;
    if (answer === null || typeof answer !== 'object') throw new ClusterError('PEER_BAD_RESPONSE', 'repair response has the wrong shape');
    return answer.message;
  }

  async ring(ring: Ring, signal?: AbortSignal): Promise<Ring> {
    const answer = (await this.#call('ring', { ring: encodeRing(ring) }, signal)) as { ring?: unknown } | null;
    try {
      return decodeRing(answer?.ring);
    } catch (e) {
      throw new ClusterError('PEER_BAD_RESPONSE', 'ring response holds no valid table', { cause: e });
    }
  }

  async stream(request: StreamRequest, signal?: AbortSignal): Promise<StreamPage> {
    return decodeStreamPage(await this.#call('stream', request, signal));
  }

  async purge(request: PurgeRequest): Promise<number> {
    const answer = (await this.#call('purge', request)) as { purged?: unknown } | null;
    if (typeof answer?.purged !== 'number') throw new ClusterError('PEER_BAD_RESPONSE', 'purge response has the wrong shape');
    return answer.purged;
  }

  #batchFull(): boolean {
    return this.#pendingRecords >= this.#maxBatch || this.#pendingBytes >= this.#maxBatchBytes;
  }

  /**
   * Bytes of writes sent to this peer and not answered yet, at most: two
   * full batches. More gains no throughput (one batch is written while the
   * next travels) and would make each request wait behind the others at the
   * peer, past its timeout, when values are large; writes wait here instead,
   * within `maxQueuedBytes`.
   */
  get #writeWindowBytes(): number {
    return 2 * this.#maxBatchBytes;
  }

  #scheduleFlush(): void {
    // A write answering starts the next flush.
    if (this.#writeBytesInFlight >= this.#writeWindowBytes) return;
    if (this.#batchFull() || this.#writesInFlight === 0) {
      if (this.#flushQueued) return;
      // Same-tick writes still travel together.
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.#flush();
      });
      return;
    }
    if (this.#cancelFlush === undefined) {
      this.#cancelFlush = this.#clock.setTimer(() => {
        this.#cancelFlush = undefined;
        this.#flush();
      }, this.#batchDelayMs);
    }
  }

  #flush(): void {
    if (this.#cancelFlush !== undefined) {
      this.#cancelFlush();
      this.#cancelFlush = undefined;
    }
    while (this.#pendingWrites.length > 0 && this.#writeBytesInFlight < this.#writeWindowBytes) {
      const { records, owners, bytes } = this.#takeBatch();
      this.#writesInFlight++;
      this.#writeBytesInFlight += bytes;
      this.#call('write', { records }).then((answer) => decodeWriteResponse(answer, records.length)).then(
        (outcomes) => {
          let at = 0;
          for (const part of owners) {
            for (let i = 0; i < part.count; i++) part.write.outcomes[part.from + i] = outcomes[at + i] ?? null;
            at += part.count;
            this.#partDone(part.write, undefined);
          }
        },
        (e: unknown) => {
          for (const part of owners) this.#partDone(part.write, e ?? new Error('write failed'));
        },
      ).finally(() => {
        this.#writesInFlight--;
        this.#writeBytesInFlight -= bytes;
        this.#queuedBytes -= bytes;
        if (this.#pendingWrites.length > 0) this.#scheduleFlush();
      });
      // Under load, keep the rest for the next round so they batch up (at most batchDelayMs).
      if (this.#writesInFlight > 0 && !this.#batchFull()) {
        if (this.#pendingWrites.length > 0) this.#scheduleFlush();
        break;
      }
    }
  }

  /**
   * The next request's records, from the head of the queue: up to
   * `maxBatchRecords` and `maxBatchBytes` (one record at least, however
   * large). A write that does not fit whole is split; it settles when all
   * its parts have.
   */
  #takeBatch(): { records: StoredRecord[]; owners: { write: PendingWrite; from: number; count: number }[]; bytes: number } {
    const records: StoredRecord[] = [];
    const owners: { write: PendingWrite; from: number; count: number }[] = [];
    let bytes = 0;
    while (this.#pendingWrites.length > 0) {
      const w = this.#pendingWrites[0]!;
      const from = w.taken;
      let took = false;
      while (w.taken < w.records.length && records.length < this.#maxBatch) {
        const r = w.records[w.taken]!;
        const size = recordBytes(r);
        if (records.length > 0 && bytes + size > this.#maxBatchBytes) break;
        records.push(r);
        bytes += size;
        w.taken++;
        took = true;
      }
      if (took) {
        w.outstanding++;
        owners.push({ write: w, from, count: w.taken - from });
      }
      if (w.taken < w.records.length) break;
      this.#pendingWrites.shift();
    }
    this.#pendingRecords -= records.length;
    this.#pendingBytes -= bytes;
    return { records, owners, bytes };
  }

  #partDone(w: PendingWrite, error: unknown): void {
    w.outstanding--;
    if (w.failed) return;
    if (error !== undefined) {
      w.failed = true;
      w.reject(error);
      return;
    }
    if (w.outstanding === 0 && w.taken === w.records.length) w.resolve(w.outcomes);
  }

  async #call(type: InternodeType, body: unknown, signal?: AbortSignal): Promise<unknown> {
    signal?.throwIfAborted();
    await this.#acquire();
    const controller = new AbortController();
    let cancelTimer: (() => void) | undefined;
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      this.requestsSent++;
      const encoded = internodePackr.pack(body);
      const deadline = new Promise<never>((_, reject) => {
        cancelTimer = this.#clock.setTimer(() => {
          const e = new ClusterError('PEER_TIMEOUT', `no answer to ${type} within ${this.#timeoutMs} ms`);
          controller.abort(e);
          reject(e);
        }, this.#timeoutMs);
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      });
      const bytes = await Promise.race([this.#transport(type, encoded, controller.signal), deadline]);
      try {
        return internodePackr.unpack(bytes);
      } catch (e) {
        throw new ClusterError('PEER_BAD_RESPONSE', `undecodable ${type} response`, { cause: e });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      cancelTimer?.();
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#inFlight < this.#maxInFlight) {
      this.#inFlight++;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.#maxQueued) {
      return Promise.reject(new ClusterError('PEER_OVERLOADED', 'too many requests queued for this peer'));
    }
    return new Promise((resolve) => this.#waiting.push(() => resolve()));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#inFlight--;
  }
}

/** `records` in consecutive chunks of at most `maxRecords` and `maxBytes` (a larger record alone). */
export function chunksOf(records: readonly StoredRecord[], maxRecords: number, maxBytes: number): StoredRecord[][] {
  const out: StoredRecord[][] = [];
  let chunk: StoredRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const size = recordBytes(r);
    if (chunk.length > 0 && (chunk.length >= maxRecords || bytes + size > maxBytes)) {
      out.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(r);
    bytes += size;
  }
  if (chunk.length > 0) out.push(chunk);
  return out;
}
