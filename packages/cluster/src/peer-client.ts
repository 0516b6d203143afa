import type { StoredRecord } from '@hearsay/storage';
import { ClusterError } from './errors.ts';
import { internodePackr } from './internode-app.ts';
import { decodeReadResponse, decodeScanResponse, type InternodeType } from './internode-messages.ts';
import type { PeerClient, PurgeRequest, ScanRequest, ScanResponse } from './peer.ts';
import type { Timers } from './timers.ts';

/**
 * Moves one encoded request to a peer and its encoded answer back: HTTP
 * (`http-transport.ts`) or the simulated network. Rejects with a
 * `ClusterError` (`PEER_*`) on failure; honours `signal`.
 */
export type InternodeTransport = (type: InternodeType, body: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>;

export interface PeerClientOptions {
  readonly timers: Timers;
  /** Per request. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** Requests in flight to this peer at once. Default 32. */
  readonly maxInFlight?: number;
  /** Requests waiting for a slot; past this a call fails at once with PEER_OVERLOADED. Default 1024. */
  readonly maxQueued?: number;
  /** Replication writes are coalesced into one request of up to this many records. Default 128; 1 disables batching. */
  readonly maxBatchRecords?: number;
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
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

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
  readonly #timers: Timers;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #maxQueued: number;
  readonly #maxBatch: number;
  readonly #batchDelayMs: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];
  #pendingWrites: PendingWrite[] = [];
  #pendingRecords = 0;
  #writesInFlight = 0;
  #flushTimer: unknown = undefined;
  #flushQueued = false;
  readonly #maxReadsInFlight: number;
  #pendingReads: PendingRead[] = [];
  #readsInFlight = 0;
  #readFlushQueued = false;
  /** Requests sent (after batching), for tests and metrics. */
  requestsSent = 0;

  constructor(transport: InternodeTransport, options: PeerClientOptions) {
    this.#transport = transport;
    this.#timers = options.timers;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#maxInFlight = options.maxInFlight ?? 32;
    this.#maxQueued = options.maxQueued ?? 1024;
    this.#maxBatch = Math.max(1, options.maxBatchRecords ?? 128);
    this.#batchDelayMs = options.batchDelayMs ?? 2;
    this.#maxReadsInFlight = Math.max(1, options.maxReadsInFlight ?? 2);
  }

  write(records: readonly StoredRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (this.#pendingWrites.length >= this.#maxQueued) {
      return Promise.reject(new ClusterError('PEER_OVERLOADED', 'too many writes queued for this peer'));
    }
    return new Promise<void>((resolve, reject) => {
      this.#pendingWrites.push({ records, resolve, reject });
      this.#pendingRecords += records.length;
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
      this.#call('read', { keys })
        .then((answer) => decodeReadResponse(answer, keys.length))
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

  async hint(target: string, records: readonly StoredRecord[]): Promise<void> {
    const answer = (await this.#call('hint', { target, records })) as { kept?: unknown } | null;
    if (typeof answer?.kept !== 'number') throw new ClusterError('PEER_BAD_RESPONSE', 'hint response has the wrong shape');
    if (answer.kept < records.length) throw new ClusterError('PEER_OVERLOADED', 'the stand-in is out of hint space for this target');
  }

  async scan(request: ScanRequest): Promise<ScanResponse> {
    return decodeScanResponse(await this.#call('scan', request));
  }

  async repair(message: unknown, signal?: AbortSignal): Promise<unknown> {
    const answer = (await this.#call('repair', { message }, signal)) as { message?: unknown } | null;
    if (answer === null || typeof answer !== 'object') throw new ClusterError('PEER_BAD_RESPONSE', 'repair response has the wrong shape');
    return answer.message;
  }

  async purge(request: PurgeRequest): Promise<number> {
    const answer = (await this.#call('purge', request)) as { purged?: unknown } | null;
    if (typeof answer?.purged !== 'number') throw new ClusterError('PEER_BAD_RESPONSE', 'purge response has the wrong shape');
    return answer.purged;
  }

  #scheduleFlush(): void {
    if (this.#pendingRecords >= this.#maxBatch || this.#writesInFlight === 0) {
      if (this.#flushQueued) return;
      // Same-tick writes still travel together.
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.#flush();
      });
      return;
    }
    if (this.#flushTimer === undefined) {
      this.#flushTimer = this.#timers.setTimeout(() => {
        this.#flushTimer = undefined;
        this.#flush();
      }, this.#batchDelayMs);
    }
  }

  #flush(): void {
    if (this.#flushTimer !== undefined) {
      this.#timers.clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    while (this.#pendingWrites.length > 0) {
      const batch: PendingWrite[] = [];
      let n = 0;
      while (this.#pendingWrites.length > 0 && (n === 0 || n + this.#pendingWrites[0]!.records.length <= this.#maxBatch)) {
        const w = this.#pendingWrites.shift()!;
        batch.push(w);
        n += w.records.length;
      }
      this.#pendingRecords -= n;
      const records = batch.flatMap((w) => w.records);
      this.#writesInFlight++;
      this.#call('write', { records }).then(
        () => {
          for (const w of batch) w.resolve();
        },
        (e: unknown) => {
          for (const w of batch) w.reject(e);
        },
      ).finally(() => {
        this.#writesInFlight--;
        if (this.#pendingWrites.length > 0) this.#scheduleFlush();
      });
      // Under load, keep the rest for the next round so they batch up (at most batchDelayMs).
      if (this.#writesInFlight > 0 && this.#pendingRecords < this.#maxBatch) {
        if (this.#pendingWrites.length > 0) this.#scheduleFlush();
        break;
      }
    }
  }

  async #call(type: InternodeType, body: unknown, signal?: AbortSignal): Promise<unknown> {
    signal?.throwIfAborted();
    await this.#acquire();
    const controller = new AbortController();
    let timer: unknown;
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      this.requestsSent++;
      const encoded = internodePackr.pack(body);
      const deadline = new Promise<never>((_, reject) => {
        timer = this.#timers.setTimeout(() => {
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
      this.#timers.clearTimeout(timer);
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
