/**
 * Request counts and latency histograms by route, method and status, exposed
 * through a prom-client registry. Recording is on the hot path, so it does
 * not go through prom-client's label hashing (its cost per request showed in
 * bench/http): series
 * live in a Map under a numeric key, and prom-client reads them only when
 * `/metrics` is scraped, through metric objects with a `get()`.
 */
import type { Metric, Registry } from 'prom-client';

export const ROUTE_LABELS = [
  '/v1/kv/{key}',
  '/v1/kv',
  '/v1/cluster',
  '/v1/health',
  '/v1/repair',
  '/v1/admin/decommission',
  '/v1/admin/remove/{node}',
  '/v1/openapi.json',
  '/metrics',
  'unmatched',
] as const;

export type RouteLabel = (typeof ROUTE_LABELS)[number];

const ROUTE_INDEX = new Map<string, number>(ROUTE_LABELS.map((route, i) => [route, i]));

/** Other methods fold into OTHER so random methods cannot grow the series without bound. */
const METHOD_LABELS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH', 'OTHER'] as const;
const METHOD_INDEX = new Map<string, number>(METHOD_LABELS.map((method, i) => [method, i]));
const OTHER_METHOD = METHOD_LABELS.length - 1;

/** Seconds; from well under a millisecond (memory) to a slow quorum write. */
export const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

interface Series {
  readonly labels: { readonly route: string; readonly method: string; readonly status: string };
  /** Non-cumulative: counts[i] observations fell in (bucket[i-1], bucket[i]]; the last slot is above every bucket. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export interface HttpMetrics {
  /** Records one answered request; `seconds` is the time to the response head. */
  record(route: RouteLabel, method: string, status: number, seconds: number): void;
}

const REQUESTS_NAME = 'hearsay_http_requests_total';
const DURATION_NAME = 'hearsay_http_request_duration_seconds';

export function createHttpMetrics(registry: Registry): HttpMetrics {
  // Bounded: 8 routes x 8 methods x the statuses the app answers.
  const series = new Map<number, Series>();

  const requests = {
    name: REQUESTS_NAME,
    help: 'HTTP requests answered, by route, method and status.',
    type: 'counter',
    aggregator: 'sum',
    get: async () => ({
      name: REQUESTS_NAME,
      help: requests.help,
      type: 'counter',
      aggregator: 'sum',
      values: [...series.values()].map((s) => ({ labels: s.labels, value: s.count })),
    }),
    reset: () => series.clear(),
  };

  const duration = {
    name: DURATION_NAME,
    help: 'Time from request to response head, by route, method and status.',
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      for (const s of series.values()) {
        let cumulative = 0;
        for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
          cumulative += s.counts[i]!;
          values.push({ metricName: `${DURATION_NAME}_bucket`, labels: { le: LATENCY_BUCKETS_S[i]!, ...s.labels }, value: cumulative });
        }
        values.push({ metricName: `${DURATION_NAME}_bucket`, labels: { le: '+Inf', ...s.labels }, value: s.count });
        values.push({ metricName: `${DURATION_NAME}_sum`, labels: s.labels, value: s.sum });
        values.push({ metricName: `${DURATION_NAME}_count`, labels: s.labels, value: s.count });
      }
      return { name: DURATION_NAME, help: duration.help, type: 'histogram', aggregator: 'sum', values };
    },
    reset: () => series.clear(),
  };

  registry.registerMetric(requests as unknown as Metric);
  registry.registerMetric(duration as unknown as Metric);

  return {
    record(route, method, status, seconds) {
      const methodIndex = METHOD_INDEX.get(method) ?? OTHER_METHOD;
      const key = (ROUTE_INDEX.get(route)! * 16 + methodIndex) * 1000 + status;
      let s = series.get(key);
      if (s === undefined) {
        s = {
          labels: { route, method: METHOD_LABELS[methodIndex]!, status: String(status) },
          counts: new Float64Array(LATENCY_BUCKETS_S.length + 1),
          sum: 0,
          count: 0,
        };
        series.set(key, s);
      }
      let bucket = 0;
      while (bucket < LATENCY_BUCKETS_S.length && seconds > LATENCY_BUCKETS_S[bucket]!) bucket++;
      s.counts[bucket]! += 1;
      s.sum += seconds;
      s.count += 1;
    },
  };
}
