/**
 * Request counts and latency histograms by route, method and status, on a
 * prom-client registry. Recording is on the hot path: label objects are
 * cached per (route, method, status) so a request allocates nothing here.
 */
import { Counter, Histogram, Registry } from 'prom-client';

export type RouteLabel =
  | '/v1/kv/{key}'
  | '/v1/kv'
  | '/v1/cluster'
  | '/v1/health'
  | '/v1/repair'
  | '/v1/openapi.json'
  | '/metrics'
  | 'unmatched';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH']);

/** Seconds; from well under a millisecond (memory) to a slow quorum write. */
const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

type Labels = { route: string; method: string; status: string };

export interface HttpMetrics {
  readonly registry: Registry;
  /** Records one answered request; `seconds` is the time to the response head. */
  record(route: RouteLabel, method: string, status: number, seconds: number): void;
}

export function createHttpMetrics(registry: Registry): HttpMetrics {
  const requests = new Counter({
    name: 'hearsay_http_requests_total',
    help: 'HTTP requests answered, by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hearsay_http_request_duration_seconds',
    help: 'Time from request to response head, by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  // Bounded: routes, methods (others fold into OTHER) and statuses are small sets.
  const labelCache = new Map<string, Labels>();
  return {
    registry,
    record(route, method, status, seconds) {
      const m = KNOWN_METHODS.has(method) ? method : 'OTHER';
      const cacheKey = `${route} ${m} ${status}`;
      let labels = labelCache.get(cacheKey);
      if (labels === undefined) {
        labels = { route, method: m, status: String(status) };
        labelCache.set(cacheKey, labels);
      }
      requests.inc(labels);
      duration.observe(labels, seconds);
    },
  };
}
