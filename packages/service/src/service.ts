/**
 * The key-value service behind the HTTP app. A single node implements it over
 * one `Store` (`createLocalService`); the cluster coordinator implements it
 * over RF replicas. The app (`@hearsay/http`) validates every input before
 * calling the service, so a service sees well-formed keys, values within
 * limits and parsed options.
 *
 * Change this interface only by extending it: the http and cluster packages
 * code against it.
 */
import type { PutOptions as StorePutOptions, StoredRecord, Version } from '@hearsay/storage';

export type Consistency = 'one' | 'quorum' | 'all';

/** The accepted `?consistency=` values, in the order the docs list them. */
export const CONSISTENCY_LEVELS: readonly Consistency[] = ['one', 'quorum', 'all'];

export interface GetOptions {
  readonly consistency: Consistency;
  /** Aborts when the client goes away; a service may ignore it. */
  readonly signal?: AbortSignal;
}

export interface PutOptions {
  readonly consistency: Consistency;
  /** Absent when the request had no `Content-Type`; the app then reports `application/octet-stream`. */
  readonly contentType?: string;
  /**
   * Write only over this version of a live record (`If-Match: <etag>`), or
   * over any live record (`If-Match: *`). Otherwise `PRECONDITION_FAILED`.
   */
  readonly ifMatch?: Version | '*';
  /** Write only when there is no live record (`If-None-Match: *`). Otherwise `PRECONDITION_FAILED`. */
  readonly ifNoneMatch?: '*';
  readonly signal?: AbortSignal;
}

export interface DeleteOptions {
  readonly consistency: Consistency;
  /** As for `put`: a tombstone is written only over that live version. */
  readonly ifMatch?: Version | '*';
  readonly signal?: AbortSignal;
}

export interface ListOptions {
  /** Only keys starting with this; `''` for all keys. */
  readonly prefix: string;
  /** Page size, 1 to the app's `maxListLimit`. */
  readonly limit: number;
  /** The `next` of a previous page. A cursor the service cannot read is `INVALID_CURSOR`. */
  readonly cursor?: string;
  readonly consistency: Consistency;
  readonly signal?: AbortSignal;
}

export interface ListItem {
  readonly key: string;
  readonly version: Version;
  /** Value size in bytes. */
  readonly size: number;
}

export interface ListPage {
  /** Live records only, sorted by key (UTF-8 byte order). */
  readonly items: readonly ListItem[];
  /** Opaque cursor of the next page, or null when the listing is complete. */
  readonly next: string | null;
}

/**
 * A member's state in `/v1/cluster`: gossip's liveness (`alive`, `suspect`,
 * `dead`, `left`), or `joining` / `leaving` while a live member takes over or
 * hands off partitions (docs/topology.md).
 */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left' | 'joining' | 'leaving';

export interface ClusterMember {
  readonly id: string;
  readonly state: MemberState;
  /** Base URL of the member's HTTP API, e.g. `http://127.0.0.1:7000`. */
  readonly http: string;
  /** `host:port` of the member's gossip endpoint; `''` when it has none. */
  readonly gossip: string;
  readonly incarnation: number;
  /** Extra fields are passed through to the JSON answer. */
  readonly [extra: string]: unknown;
}

export interface ClusterView {
  readonly self: string;
  readonly members: readonly ClusterMember[];
}

export interface HealthReport {
  /** False answers `/v1/health` with 503 `NOT_SERVING`. */
  readonly ok: boolean;
  /** Said in the 503 message when `ok` is false. */
  readonly reason?: string;
  /** Extra fields are passed through to the JSON answer. */
  readonly [extra: string]: unknown;
}

/** A line of `POST /v1/repair` before the summary. */
export interface RepairProgress {
  readonly type: 'progress';
  /** Units done and total (ranges, for the cluster); total may grow. */
  readonly done: number;
  readonly total: number;
  readonly [extra: string]: unknown;
}

/** The last line of `POST /v1/repair`. */
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
  /** Human-readable remark, e.g. why there was nothing to do. */
  readonly message?: string;
  readonly [extra: string]: unknown;
}

export type RepairLine = RepairProgress | RepairSummary;

/** The whole answer of a repair that has nothing to compare: one in-sync summary saying why. */
export async function* nothingToRepair(message: string): AsyncIterable<RepairLine> {
  yield { type: 'summary', inSync: true, rangesCompared: 0, keysSent: 0, keysReceived: 0, bytesSent: 0, bytesReceived: 0, durationMs: 0, message };
}

export interface RepairOptions {
  /** Aborted when the client disconnects or the node shuts down. */
  readonly signal?: AbortSignal;
}

const HANDED_OVER: StorePutOptions = { adoptValue: true };

/**
 * `Store.put` options for the value a `KvService.put` was handed: the store
 * keeps it without a copy (`adoptValue`).
 */
export function handedOverPutOptions(contentType: string | undefined): StorePutOptions {
  return contentType === undefined ? HANDED_OVER : { contentType, adoptValue: true };
}

/** A membership operation an operator asks a node for (`POST /v1/admin/...`). */
export type AdminRequest =
  /** This node hands its partitions to their next owners and leaves; `abort` takes it back. */
  | { readonly type: 'decommission'; readonly abort: boolean }
  /** A member that will not come back: its partitions are re-replicated from the survivors. */
  | { readonly type: 'remove'; readonly node: string };

/**
 * A node's budget of request-body bytes in flight, shared by every route that
 * reads a body: the public API (`LoadLimits` of `@hearsay/http` implements
 * it) and the cluster's internode routes. A body that does not fit is
 * refused with 503 `BUSY` before a byte of it is read.
 */
export interface BodyBudget {
  /** Bytes the budget holds in all. */
  readonly maxBodyBytesInFlight: number;
  /** Takes `bytes` of the budget; false (and counted as a refusal) when they do not fit. */
  reserveBody(bytes: number): boolean;
  /** Gives back what a `reserveBody` took, once the body is no longer held. */
  releaseBody(bytes: number): void;
}

export interface KvService {
  /** The live record, or undefined when missing, deleted or expired. */
  get(key: string, options: GetOptions): Promise<StoredRecord | undefined>;
  /**
   * Optional: `get` answered without waiting, when the service can (e.g. a
   * single replica whose store has the key in memory): what `get` would
   * resolve with, or `null` when only `get` can answer. Throws what `get`
   * would reject with. The app then answers the request synchronously.
   */
  getNow?(key: string, options: GetOptions): StoredRecord | undefined | null;
  /**
   * Writes a value; resolves with the record written (its version is the new
   * ETag). The service may keep `value` itself (no copy): the caller hands it
   * over and never modifies it (the app passes a fresh buffer of the body).
   */
  put(key: string, value: Uint8Array, options: PutOptions): Promise<StoredRecord>;
  /** Writes a tombstone, also when the key is missing (idempotent); resolves with the tombstone. */
  delete(key: string, options: DeleteOptions): Promise<StoredRecord>;
  list(options: ListOptions): Promise<ListPage>;
  cluster(): Promise<ClusterView>;
  health(): Promise<HealthReport>;
  /** Progress lines, then exactly one summary as the last line. */
  repair(options: RepairOptions): AsyncIterable<RepairLine>;
  /**
   * Extra Prometheus exposition text appended to `/metrics` (storage and
   * cluster figures). Metric names must not clash with the app's
   * `hearsay_http_*` names.
   */
  metrics?(): string | Promise<string>;
  /**
   * Optional: membership operations (`POST /v1/admin/decommission`,
   * `POST /v1/admin/remove/{node}`). Resolves once the change is recorded
   * (answered 202 with what it resolves to); the change then runs in the
   * background and `/v1/cluster` shows its progress.
   */
  admin?(request: AdminRequest): Promise<Record<string, unknown>>;
}

/**
 * Codes a service may fail with, and the HTTP status each one answers.
 * Append only: clients match on these codes.
 */
export const SERVICE_ERROR_STATUS = {
  /** `If-Match` / `If-None-Match` did not hold. */
  PRECONDITION_FAILED: 412,
  /** Fewer replicas acknowledged than the consistency level needs; `details` = `{ acknowledged, required }`. */
  INSUFFICIENT_REPLICAS: 503,
  /** The service cannot serve right now (starting, shutting down, store closed). */
  UNAVAILABLE: 503,
  /** The replicas did not answer in time; `details` may say how many acknowledged. */
  TIMEOUT: 503,
  /** A `cursor` the service cannot read. */
  INVALID_CURSOR: 400,
  /**
   * Another operation of the same kind (e.g. a repair) is already running, or
   * concurrent writes to the key kept superseding this write.
   */
  CONFLICT: 409,
  /** Too much work queued (storage write queue, pending replica calls); retry later. */
  BUSY: 503,
  // Input the app let through but the store refused (its limits are stricter than the app's).
  KEY_EMPTY: 400,
  KEY_TOO_LONG: 400,
  INVALID_KEY: 400,
  VALUE_TOO_LARGE: 413,
  INVALID_ARGUMENT: 400,
  /** `remove` of an id the cluster does not know. */
  UNKNOWN_MEMBER: 404,
  /** `remove` of a member gossip reports alive or suspect: decommission it instead. */
  MEMBER_ALIVE: 409,
  /** A decommission that would leave fewer owners than the replication factor. */
  BELOW_REPLICATION_FACTOR: 409,
  /**
   * The node refuses to stamp a write because of clocks: its own is more than
   * the maximum clock offset away from the members it reaches (fenced), or
   * runs that far ahead of its wall clock, or the key holds a version that far
   * ahead. `details` say by how much (`offsetMs`, `maxOffsetMs`, ...). Retry
   * through another node.
   */
  CLOCK_SKEW: 503,
} as const;

export type ServiceErrorCode = keyof typeof SERVICE_ERROR_STATUS;

/** Details are merged into the JSON `error` object beside `code` and `message`. */
export type ServiceErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  readonly code: ServiceErrorCode;
  readonly details: ServiceErrorDetails;

  constructor(code: ServiceErrorCode, message: string, details: ServiceErrorDetails = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return SERVICE_ERROR_STATUS[this.code];
  }
}

/**
 * A `ServiceError`, also one from another copy of this package (matched by
 * name and a known code). The app answers a code outside
 * `SERVICE_ERROR_STATUS` as a logged 500, never with a made-up status.
 */
export function isServiceError(error: unknown): error is ServiceError {
  if (!(error instanceof Error) || error.name !== 'ServiceError') return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && Object.hasOwn(SERVICE_ERROR_STATUS, code);
}

/** The 503 of a write or read that too few replicas acknowledged. */
export function insufficientReplicas(acknowledged: number, required: number, total?: number): ServiceError {
  const of = total === undefined ? '' : ` of ${total}`;
  return new ServiceError(
    'INSUFFICIENT_REPLICAS',
    `${required}${of} replicas required, ${acknowledged} acknowledged`,
    { acknowledged, required },
  );
}
