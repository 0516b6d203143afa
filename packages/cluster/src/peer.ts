import type { StoredRecord, Version } from '@hearsay/storage';
import type { MemberInfo } from './membership.ts';
import type { Ring } from './ring.ts';

/**
 * Internode calls to one other member. Implemented over HTTP
 * (`peer-client.ts` over `http-transport.ts`) and over the simulated network in tests. Every
 * method rejects with a `ClusterError` (`PEER_*` codes) when the peer cannot
 * answer; none of them throws synchronously.
 */
export interface PeerClient {
  /**
   * Merge records into the peer's store (LWW). Resolves once they are
   * durable there, with what the peer did with each record, in order.
   */
  write(records: readonly StoredRecord[], signal?: AbortSignal): Promise<ReplicaOutcome[]>;
  /** The peer's stored records (tombstones included), `undefined` where it has none; same order as `keys`. */
  read(keys: readonly string[], signal?: AbortSignal): Promise<(StoredRecord | undefined)[]>;
  /** Ask the peer to keep `records` as hints for `target` and deliver them when it is back. */
  hint(target: string, records: readonly StoredRecord[], signal?: AbortSignal): Promise<void>;
  /** A page of the peer's records, tombstones included, for listings. */
  scan(request: ScanRequest, signal?: AbortSignal): Promise<ScanResponse>;
  /** One request of a repair session, answered by the peer's repair responder. */
  repair(message: unknown, signal?: AbortSignal): Promise<unknown>;
  /**
   * Ask the peer to purge the tombstones of a bucket range below `beforeMs`
   * (it never goes past its own grace period). Sent by the replica that
   * established the purge rule for the range; resolves with how many went.
   */
  purge(request: PurgeRequest, signal?: AbortSignal): Promise<number>;
  /** Sends this node's ownership table; resolves with the peer's (both sides merge). */
  ring(ring: Ring, signal?: AbortSignal): Promise<Ring>;
  /** A page of every record of a bucket range on the peer (bulk copy of a partition). */
  stream(request: StreamRequest, signal?: AbortSignal): Promise<StreamPage>;
  /**
   * Optional: whether a write would be taken now (false: the bytes queued
   * for this peer are at their cap, and `write` would fail with
   * `PEER_OVERLOADED` at once). The coordinator refuses a client's write
   * (503 `BUSY`) when too few of its replicas have room, rather than
   * pile up work it cannot send.
   */
  hasRoom?(): boolean;
}

/** What a replica did with one record it was sent. */
export type ReplicaOutcome =
  /** Applied, or it already held this very record: the record is there. */
  | null
  /**
   * It holds a record that wins over this one (a higher version): the write
   * lost there. Its version and whether it is a tombstone, so the writer can
   * stamp past it (or learn that a precondition no longer holds).
   */
  | { readonly held: Version; readonly tombstone: boolean }
  /**
   * Refused: the record's version is more than the replica's maximum clock
   * offset ahead of its clock (storage's VERSION_AHEAD); nothing written.
   */
  | { readonly aheadMs: number };

export interface PurgeRequest {
  readonly fromBucket: number;
  readonly toBucket: number;
  readonly beforeMs: number;
}

export interface ScanRequest {
  readonly prefix: string;
  /** Only keys strictly after this one. */
  readonly after?: string;
  readonly limit: number;
}

export interface ScanResponse {
  /** Sorted by key, tombstones included, at most `limit`. */
  readonly records: StoredRecord[];
  /** True when the peer has more records after the last one. */
  readonly more: boolean;
}

/** Makes (or reuses) the client for a member. Called often: cache by id and address. */
export type PeerFactory = (member: MemberInfo) => PeerClient;

/** A page of the internode `stream` (stream.ts): every record of a bucket range, in index order. */
export interface StreamRequest {
  readonly fromBucket: number;
  readonly toBucket: number;
  /** Resume after this key of bucket `fromBucket`. */
  readonly after?: string;
  readonly limit: number;
}

export interface StreamPage {
  readonly records: StoredRecord[];
  /** Where the next page starts; null when the range is done. */
  readonly next: { readonly bucket: number; readonly after?: string } | null;
}
