/**
 * What a node refuses when it has too much to do, and the record of those
 * refusals: a budget of request-body bytes being read at once (public PUT
 * values and internode requests together), counters of every limit that
 * refused work, and whether the node is shedding load (refused something in
 * the last few seconds), which `/v1/health` reports.
 *
 * One `LoadLimits` per node: the HTTP app takes a body's bytes from it
 * before reading a PUT, the cluster's internode routes before reading an
 * internode request, and the connection limiter (connection-limit.ts) tells
 * it about connections it refused or closed.
 */
import type { Clock } from '@hearsay/clock';
import type { BodyBudget } from '@hearsay/service';
import type { Metric, Registry } from 'prom-client';

/** Limits that refuse work, as the `limit` label of `hearsay_http_limit_refusals_total` (append only). */
export const LIMIT_NAMES = [
  /** A new connection found every slot busy (`--http-max-connections`). */
  'connections',
  /** A request body would pass the bytes of bodies being read at once (`--http-max-body-bytes-in-flight`). */
  'body_bytes_in_flight',
  /** The service had too much queued (writes to replicas, the store's write queue) and answered BUSY. */
  'busy',
  /** A request head or body did not arrive in time (`--http-headers-timeout-ms`, `--http-receive-timeout-ms`). */
  'request_timeout',
  /** A connection on which no byte moved for `--http-stall-timeout-ms` was closed. */
  'stall_timeout',
] as const;

export type LimitName = (typeof LIMIT_NAMES)[number];

/**
 * The refusals that mean the node has more work than it takes: after one,
 * it reports itself shedding load. Timeouts are a slow or idle client's
 * doing, not the node's load, and do not count.
 */
const SHEDDING: ReadonlySet<LimitName> = new Set(['connections', 'body_bytes_in_flight', 'busy']);

/** Why a connection was closed to make room for a new one (`hearsay_http_connections_evicted_total`). */
export const EVICTION_REASONS = ['idle', 'no_request_yet'] as const;
export type EvictionReason = (typeof EVICTION_REASONS)[number];

export interface LoadLimitsOptions {
  /** Bytes of request bodies read at once, summed over every request in flight. */
  readonly maxBodyBytesInFlight: number;
  /** After refusing work, the node reports itself shedding load for this long. Default 5000 ms. */
  readonly sheddingWindowMs?: number;
  /** When refusals happened, for the shedding window; a monotonic clock (`performance.now`) by default (tests pass their own). */
  readonly clock?: Pick<Clock, 'now'>;
}

export const DEFAULT_SHEDDING_WINDOW_MS = 5000;

const MONOTONIC: Pick<Clock, 'now'> = { now: () => performance.now() };

export class LoadLimits implements BodyBudget {
  readonly maxBodyBytesInFlight: number;
  readonly sheddingWindowMs: number;
  readonly #clock: Pick<Clock, 'now'>;
  #bodyBytesInFlight = 0;
  readonly #refusals = new Map<LimitName, number>(LIMIT_NAMES.map((name) => [name, 0]));
  readonly #evictions = new Map<EvictionReason, number>(EVICTION_REASONS.map((reason) => [reason, 0]));
  #lastRefusal: { readonly limit: LimitName; readonly atMs: number } | undefined;
  /** Connections open now; kept by the connection limiter. */
  connections = 0;
  /** The connection cap in force, for the metric; 0 when no limiter reports it. */
  maxConnections = 0;

  constructor(options: LoadLimitsOptions) {
    if (!Number.isSafeInteger(options.maxBodyBytesInFlight) || options.maxBodyBytesInFlight < 1) {
      throw new RangeError('maxBodyBytesInFlight must be a whole number of at least 1');
    }
    this.maxBodyBytesInFlight = options.maxBodyBytesInFlight;
    this.sheddingWindowMs = options.sheddingWindowMs ?? DEFAULT_SHEDDING_WINDOW_MS;
    this.#clock = options.clock ?? MONOTONIC;
  }

  get bodyBytesInFlight(): number {
    return this.#bodyBytesInFlight;
  }

  /**
   * Takes `bytes` of the body budget, or refuses (false, counted as a
   * `body_bytes_in_flight` refusal). Give them back with `releaseBody` once
   * the body is no longer held.
   */
  reserveBody(bytes: number): boolean {
    if (this.#bodyBytesInFlight + bytes > this.maxBodyBytesInFlight) {
      this.refused('body_bytes_in_flight');
      return false;
    }
    this.#bodyBytesInFlight += bytes;
    return true;
  }

  releaseBody(bytes: number): void {
    this.#bodyBytesInFlight -= bytes;
    if (this.#bodyBytesInFlight < 0) throw new Error(`body budget released more than it reserved (${this.#bodyBytesInFlight})`);
  }

  /**
   * A limit refused work: counted; for a refusal for load (connections, body
   * bytes, busy), the node reports shedding load for the next `sheddingWindowMs`.
   */
  refused(limit: LimitName): void {
    this.#refusals.set(limit, (this.#refusals.get(limit) ?? 0) + 1);
    if (SHEDDING.has(limit)) this.#lastRefusal = { limit, atMs: this.#clock.now() };
  }

  /** A connection was closed to make room for a new one (not a refusal: the new one is served). */
  evicted(reason: EvictionReason): void {
    this.#evictions.set(reason, (this.#evictions.get(reason) ?? 0) + 1);
  }

  refusals(limit: LimitName): number {
    return this.#refusals.get(limit) ?? 0;
  }

  evictions(reason: EvictionReason): number {
    return this.#evictions.get(reason) ?? 0;
  }

  /** Why the node is shedding load, or undefined when it refused nothing in the last `sheddingWindowMs`. */
  shedding(): string | undefined {
    const last = this.#lastRefusal;
    if (last === undefined) return undefined;
    const agoMs = this.#clock.now() - last.atMs;
    if (agoMs > this.sheddingWindowMs) return undefined;
    return `shedding load: the ${last.limit} limit refused work ${Math.round(agoMs)} ms ago`;
  }

  /** Registers the `hearsay_http_*` limit metrics in `registry` (read only when scraped). */
  register(registry: Registry): void {
    const gauge = (name: string, help: string, value: () => number): Metric =>
      ({
        name,
        help,
        type: 'gauge',
        aggregator: 'sum',
        get: async () => ({ name, help, type: 'gauge', aggregator: 'sum', values: [{ labels: {}, value: value() }] }),
        reset: () => undefined,
      }) as unknown as Metric;
    const counter = <L extends string>(name: string, help: string, label: string, keys: readonly L[], value: (key: L) => number): Metric =>
      ({
        name,
        help,
        type: 'counter',
        aggregator: 'sum',
        get: async () => ({
          name,
          help,
          type: 'counter',
          aggregator: 'sum',
          values: keys.map((key) => ({ labels: { [label]: key }, value: value(key) })),
        }),
        reset: () => undefined,
      }) as unknown as Metric;
    registry.registerMetric(gauge('hearsay_http_connections', 'HTTP connections open.', () => this.connections));
    registry.registerMetric(gauge('hearsay_http_connections_max', 'The cap on HTTP connections open at once.', () => this.maxConnections));
    registry.registerMetric(gauge('hearsay_http_body_bytes_in_flight', 'Bytes of request bodies being read or held now.', () => this.#bodyBytesInFlight));
    registry.registerMetric(gauge('hearsay_http_body_bytes_in_flight_max', 'The cap on bytes of request bodies in flight.', () => this.maxBodyBytesInFlight));
    registry.registerMetric(
      counter('hearsay_http_limit_refusals_total', 'Requests or connections refused by a limit, by limit.', 'limit', LIMIT_NAMES, (k) => this.refusals(k)),
    );
    registry.registerMetric(
      counter(
        'hearsay_http_connections_evicted_total',
        'Connections closed to make room for new ones at the connection cap, by what they were doing.',
        'reason',
        EVICTION_REASONS,
        (k) => this.evictions(k),
      ),
    );
  }
}
