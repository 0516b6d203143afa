import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { createHttpMetrics } from './metrics.ts';

it('exposes cumulative latency buckets, sums and counts per route, method and status', async () => {
  const registry = new Registry();
  const metrics = createHttpMetrics(registry);
  metrics.record('/v1/kv/{key}', 'GET', 200, 0.0002);
  metrics.record('/v1/kv/{key}', 'GET', 200, 0.003);
  metrics.record('/v1/kv/{key}', 'GET', 200, 9);
  metrics.record('/v1/kv/{key}', 'BREW', 405, 0.00001);
  const text = await registry.metrics();
  const series = '{route="/v1/kv/{key}",method="GET",status="200"}';
  expect(text).toContain(`hearsay_http_requests_total${series} 3\n`);
  expect(text).toContain('hearsay_http_request_duration_seconds_bucket{le="0.0001",route="/v1/kv/{key}",method="GET",status="200"} 0\n');
  expect(text).toContain('hearsay_http_request_duration_seconds_bucket{le="0.00025",route="/v1/kv/{key}",method="GET",status="200"} 1\n');
  expect(text).toContain('hearsay_http_request_duration_seconds_bucket{le="0.005",route="/v1/kv/{key}",method="GET",status="200"} 2\n');
  expect(text).toContain('hearsay_http_request_duration_seconds_bucket{le="5",route="/v1/kv/{key}",method="GET",status="200"} 2\n');
  expect(text).toContain('hearsay_http_request_duration_seconds_bucket{le="+Inf",route="/v1/kv/{key}",method="GET",status="200"} 3\n');
  expect(text).toContain(`hearsay_http_request_duration_seconds_count${series} 3\n`);
  expect(text).toMatch(/hearsay_http_request_duration_seconds_sum\{route="\/v1\/kv\/\{key\}",method="GET",status="200"\} 9\.0032/);
  expect(text).toContain('hearsay_http_requests_total{route="/v1/kv/{key}",method="OTHER",status="405"} 1\n');
  expect(text).toContain('# TYPE hearsay_http_request_duration_seconds histogram\n');
  expect(text).toContain('# TYPE hearsay_http_requests_total counter\n');
});
