/**
 * The shapes of HTTP API v1 (docs/api.md) as the client sees them on the wire.
 * Objects the server may extend carry an index signature so extra fields
 * pass through.
 */

export type Consistency = 'one' | 'quorum' | 'all';

/** What a `fetch` must do for the client; `globalThis.fetch` and Hono's `app.request` both fit. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Base URL of any node. Default `http://127.0.0.1:7000`. */
  readonly baseUrl?: string;
  /** Default `globalThis.fetch`. */
  readonly fetch?: FetchLike;
  /** Sent as `?consistency=` on get/head/put/delete unless a call says otherwise; absent = the server's default (`quorum`). */
  readonly consistency?: Consistency;
  /** Per call, until the whole answer is read (for `repair`, until the answer starts). Default 30 000. */
  readonly timeoutMs?: number;
  /** Sent with every request. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A token of the node's auth file (`hearsay token create`), sent as
   * `Authorization: Bearer <token>` with every request. Needed when the node
   * was started with `--auth-file`; without one a request fails with
   * `UNAUTHENTICATED` (401), with one that lacks the scope with `FORBIDDEN` (403).
   */
  readonly token?: string;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export interface ReadOptions extends CallOptions {
  readonly consistency?: Consistency;
}

export interface GetOptions extends ReadOptions {
  /** Sent as `If-None-Match`; when it matches, `get` resolves with `{ notModified: true }`. */
  readonly ifNoneMatch?: string;
}

export interface PutOptions extends ReadOptions {
  /** Stored and returned by `get`. Default `text/plain; charset=utf-8` for a string value, else `application/octet-stream`. */
  readonly contentType?: string;
  /** Write only over this version (`If-Match`); `'*'` = over any live value. Otherwise `PRECONDITION_FAILED`. */
  readonly ifMatch?: string;
  /** `'*'`: create only (`If-None-Match: *`). Otherwise `PRECONDITION_FAILED`. */
  readonly ifNoneMatch?: '*';
}

export interface DeleteOptions extends ReadOptions {
  /** Delete only this version (`If-Match`); `'*'` = any live value. Otherwise `PRECONDITION_FAILED`. */
  readonly ifMatch?: string;
}

export interface KvEntry {
  readonly notModified: false;
  readonly key: string;
  readonly value: Uint8Array;
  /** Opaque version; pass it back as `ifMatch` / `ifNoneMatch`. */
  readonly etag: string;
  readonly contentType: string;
  /** The value decoded as UTF-8. */
  text(): string;
}

export interface NotModified {
  readonly notModified: true;
  readonly key: string;
  readonly etag: string;
}

export interface KvHead {
  readonly key: string;
  readonly etag: string;
  readonly contentType: string;
  /** Value size in bytes. */
  readonly size: number;
}

export interface PutResult {
  readonly etag: string;
}

export interface ListOptions extends CallOptions {
  readonly prefix?: string;
  /** Page size, 1 to 1000; server default 100. */
  readonly limit?: number;
  /** The `next` of a previous page. */
  readonly cursor?: string;
  readonly consistency?: Consistency;
}

export interface ListItem {
  readonly key: string;
  readonly etag: string;
  readonly size: number;
}

export interface ListPage {
  readonly items: readonly ListItem[];
  readonly next: string | null;
}

/** Gossip's liveness, or `joining` / `leaving` while a live member takes over or hands off partitions. */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left' | 'joining' | 'leaving';

export interface ClusterMember {
  readonly id: string;
  readonly state: MemberState;
  readonly http: string;
  readonly gossip: string;
  readonly incarnation: number;
  readonly [extra: string]: unknown;
}

export interface ClusterView {
  readonly self: string;
  readonly members: readonly ClusterMember[];
}

export interface Health {
  readonly ok: boolean;
  readonly [extra: string]: unknown;
}

export interface RepairProgress {
  readonly type: 'progress';
  readonly done: number;
  /** May grow while the repair runs. */
  readonly total: number;
  readonly [extra: string]: unknown;
}

export interface RepairSummary {
  readonly type: 'summary';
  /** True when every replica the repair covered is in sync. */
  readonly inSync: boolean;
  readonly rangesCompared: number;
  readonly keysSent: number;
  readonly keysReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly durationMs: number;
  readonly message?: string;
  readonly [extra: string]: unknown;
}

export type RepairLine = RepairProgress | RepairSummary;
