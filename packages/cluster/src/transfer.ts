import { TokenBucket } from '@hearsay/repair';
import type { Store } from '@hearsay/storage';
import type { RepairRange } from './anti-entropy.ts';
import type { PeerClient } from './peer.ts';
import { recordBytes } from './peer-client.ts';
import type { StreamPage } from './stream.ts';
import { sleep, type Clock } from '@hearsay/clock';

/**
 * Filling one partition a node takes over (docs/topology.md, step 3): a
 * bulk copy of every record from one source (internode `stream` pages
 * applied with `applyMany`), then repair sessions with the next sources until
 * those reached are enough (the displaced member alone is; otherwise a
 * majority of the old set must not be left out). Records
 * written meanwhile arrive through ordinary replication: last-write-wins
 * makes the order irrelevant.
 */

export interface FillDeps {
  readonly store: Store;
  /** The client of a member that is reachable now; undefined when it is not. */
  readonly peer: (id: string) => PeerClient | undefined;
  readonly repairRange: RepairRange;
  readonly clock: Clock;
  /** Shared by every fill of this node: bytes of stream pages. */
  readonly limiter: StreamLimiter;
  /** Records per stream page (the responder also bounds its bytes). */
  readonly pageRecords: number;
  readonly onError?: (what: string, error: unknown) => void;
}

/** One partition of a fill and what suffices for it. */
export interface FillPart {
  readonly partition: number;
  readonly fromBucket: number;
  readonly toBucket: number;
  /** Whether the sources reached so far suffice (`covered` of placement.ts); repair sessions stop there. */
  readonly enough: (reached: ReadonlySet<string>) => boolean;
}

/**
 * Consecutive partitions (one contiguous bucket range) with the same
 * sources: one bulk copy covers them all, then each gets the repair
 * sessions it still needs. A new cluster's joiners and a replacement fill
 * long runs this way with a few requests instead of one per partition.
 */
export interface FillRequest {
  readonly parts: readonly FillPart[];
  /** In order of preference for the bulk copy. */
  readonly sources: readonly string[];
  readonly signal?: AbortSignal;
}

export interface FillResult {
  /** Per partition: the sources whose records this node now holds (copy or repair session completed). */
  readonly reached: ReadonlyMap<number, ReadonlySet<string>>;
  readonly keys: number;
  readonly bytes: number;
}

/** The byte-rate limit of streaming (`streamRateLimitBytesPerSec`); 0 = unlimited. */
export class StreamLimiter {
  readonly #bucket: TokenBucket | undefined;
  readonly #clock: Clock;
  constructor(bytesPerSec: number, clock: Clock) {
    this.#clock = clock;
    this.#bucket = bytesPerSec > 0 ? new TokenBucket(bytesPerSec, bytesPerSec, clock.now()) : undefined;
  }

  /** Takes `bytes` and waits as long as the rate says. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const waitMs = this.#bucket?.take(bytes, this.#clock.now()) ?? 0;
    if (waitMs > 0) await sleep(this.#clock, waitMs, signal);
  }
}

export async function fillPartition(deps: FillDeps, request: FillRequest): Promise<FillResult> {
  const { parts, signal } = request;
  const first = parts[0];
  const last = parts.at(-1);
  if (first === undefined || last === undefined) return { reached: new Map(), keys: 0, bytes: 0 };
  const fromBucket = first.fromBucket;
  const toBucket = last.toBucket;
  const label = parts.length === 1 ? `partition ${first.partition}` : `partitions ${first.partition}-${last.partition}`;
  let bulk: string | undefined;
  let keys = 0;
  let bytes = 0;
  for (const source of request.sources) {
    signal?.throwIfAborted();
    const peer = deps.peer(source);
    if (peer === undefined) continue;
    try {
      const ask = (position: { bucket: number; after?: string }): Promise<StreamPage> =>
        peer.stream({ fromBucket: position.bucket, toBucket, limit: deps.pageRecords, ...(position.after === undefined ? {} : { after: position.after }) }, signal);
      // The next page is asked for while this one is applied: the source's reads overlap this node's writes.
      let from = fromBucket;
      let pending: Promise<StreamPage> | undefined = ask({ bucket: fromBucket });
      while (pending !== undefined) {
        signal?.throwIfAborted();
        const page: StreamPage = await pending;
        if (page.next !== null && (page.next.bucket < from || page.next.bucket >= toBucket)) {
          throw new Error(`stream from ${source} went backwards or out of range`);
        }
        pending = page.next === null ? undefined : ask(page.next);
        pending?.catch(() => undefined);
        if (page.next !== null) from = page.next.bucket;
        if (page.records.length > 0) await deps.store.applyMany(page.records);
        const pageBytes = page.records.reduce((n, r) => n + recordBytes(r), 0);
        keys += page.records.length;
        bytes += pageBytes;
        await deps.limiter.take(pageBytes, signal);
      }
      bulk = source;
      break;
    } catch (e) {
      if (signal?.aborted) throw e;
      deps.onError?.(`copying ${label} from ${source}`, e);
    }
  }
  const reachedByPartition = new Map<number, ReadonlySet<string>>();
  for (const part of parts) {
    const reached = new Set<string>(bulk === undefined ? [] : [bulk]);
    for (const source of request.sources) {
      if (reached.has(source)) continue;
      if (reached.size > 0 && part.enough(reached)) break;
      signal?.throwIfAborted();
      const peer = deps.peer(source);
      if (peer === undefined) continue;
      try {
        const r = await deps.repairRange({
          partition: part.partition,
          fromBucket: part.fromBucket,
          toBucket: part.toBucket,
          peerId: source,
          peer,
          ...(signal === undefined ? {} : { signal }),
        });
        keys += r.stats.keysReceived;
        bytes += r.stats.bytesReceived;
        reached.add(source);
      } catch (e) {
        if (signal?.aborted) throw e;
        deps.onError?.(`repairing partition ${part.partition} with ${source}`, e);
      }
    }
    reachedByPartition.set(part.partition, reached);
  }
  return { reached: reachedByPartition, keys, bytes };
}
