import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Internode authentication with the cluster key: HMAC-SHA256 over
 * `METHOD \n PATH \n TIMESTAMP \n` followed by the body bytes, sent as
 * `x-hearsay-timestamp` (epoch ms) and `x-hearsay-signature` (hex).
 *
 * A node with a key refuses unsigned requests (401 `UNAUTHENTICATED`),
 * requests signed with another key (403 `FORBIDDEN`) and timestamps more
 * than `maxClockSkewMs` away from its clock (401 `STALE_REQUEST`, which
 * bounds replays). A node without a key refuses signed requests (403
 * `FORBIDDEN`): they come from a cluster that has one. The key never travels.
 */
export const TIMESTAMP_HEADER = 'x-hearsay-timestamp';
export const SIGNATURE_HEADER = 'x-hearsay-signature';
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;

export function signRequest(key: string, method: string, path: string, timestampMs: number, body: Uint8Array): string {
  return createHmac('sha256', key)
    .update(`${method.toUpperCase()}\n${path}\n${timestampMs}\n`)
    .update(body)
    .digest('hex');
}

export type AuthFailure = { readonly status: 401 | 403; readonly code: 'UNAUTHENTICATED' | 'FORBIDDEN' | 'STALE_REQUEST'; readonly message: string };

/**
 * The checks that need no body (missing or stale credentials, or credentials
 * sent to a node without a key), so a node refuses those before reading
 * what may be a large body. undefined: go on and read the body.
 */
export function precheckRequest(
  key: string | undefined,
  headers: { get(name: string): string | null | undefined },
  nowMs: number,
  maxClockSkewMs = DEFAULT_MAX_CLOCK_SKEW_MS,
): AuthFailure | undefined {
  const failure = checkRequest(key, 'POST', '', headers, new Uint8Array(0), nowMs, maxClockSkewMs);
  // Only a signature check can still fail once the body is there.
  return failure?.code === 'FORBIDDEN' && key !== undefined && key !== '' ? undefined : failure;
}

/** undefined when the request may pass. */
export function checkRequest(
  key: string | undefined,
  method: string,
  path: string,
  headers: { get(name: string): string | null | undefined },
  body: Uint8Array,
  nowMs: number,
  maxClockSkewMs = DEFAULT_MAX_CLOCK_SKEW_MS,
): AuthFailure | undefined {
  const signature = headers.get(SIGNATURE_HEADER) ?? undefined;
  const stamp = headers.get(TIMESTAMP_HEADER) ?? undefined;
  if (key === undefined || key === '') {
    if (signature !== undefined) return { status: 403, code: 'FORBIDDEN', message: 'this node has no cluster key; signed requests come from another cluster' };
    return undefined;
  }
  if (signature === undefined || stamp === undefined) return { status: 401, code: 'UNAUTHENTICATED', message: 'internode requests need the cluster key' };
  const ts = /^[0-9]{1,16}$/.test(stamp) ? Number(stamp) : NaN;
  if (!Number.isSafeInteger(ts) || Math.abs(nowMs - ts) > maxClockSkewMs) {
    return { status: 401, code: 'STALE_REQUEST', message: 'the request timestamp is missing or too far from this node\'s clock' };
  }
  const expected = Buffer.from(signRequest(key, method, path, ts, body), 'hex');
  const given = /^[0-9a-f]{64}$/.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { status: 403, code: 'FORBIDDEN', message: 'the request was not signed with this cluster\'s key' };
  }
  return undefined;
}
