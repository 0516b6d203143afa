import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Internode authentication with the cluster key, checked from the headers
 * alone so that a node does no work for a request it cannot authenticate:
 * no body is read, buffered or counted against any budget first.
 *
 * The sender signs, with HMAC-SHA256 under the cluster key,
 *
 *   hearsay-v2 \n METHOD \n PATH \n TARGET \n TIMESTAMP \n NONCE \n LENGTH \n SHA256
 *
 * where TARGET is the receiving node's id (so a request captured on its way
 * to one node is refused by every other), TIMESTAMP its clock in epoch ms,
 * NONCE 16 random bytes, LENGTH the body's `Content-Length`, and SHA256 the
 * hex SHA-256 of the body. The headers carry timestamp, nonce, digest and
 * signature (`x-hearsay-*`). The receiver checks the signature over what
 * the headers declare, refuses a timestamp more than `maxClockSkewMs` from
 * its clock and a nonce it has seen (a `NonceCache` over that window), and
 * only then reads exactly LENGTH bytes, whose digest must match SHA256.
 *
 * A node with a key refuses requests without credentials (401
 * `UNAUTHENTICATED`), with a timestamp more than `maxClockSkewMs` from its
 * clock (401 `CLOCK_SKEW`, with `offsetMs`: the clocks of the two nodes
 * disagree — said as such, not as a key problem), a nonce seen before (401
 * `REPLAYED`) or older than the nonces it can still cover (401
 * `STALE_REQUEST`), a signature made with another key or for
 * another node (403 `FORBIDDEN`), and a body that is not the one signed
 * (403 `BODY_MISMATCH`). A node without a key refuses signed requests (403
 * `FORBIDDEN`): they come from a cluster that has one. The key never travels.
 */
export const TIMESTAMP_HEADER = 'x-hearsay-timestamp';
export const NONCE_HEADER = 'x-hearsay-nonce';
export const DIGEST_HEADER = 'x-hearsay-content-sha256';
export const SIGNATURE_HEADER = 'x-hearsay-signature';
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;
/** Part of the signed text: a node never accepts a signature made for another scheme (append a new one, never reuse). */
const SCHEME = 'hearsay-v2';

/** What a signature covers. */
export interface SignedRequest {
  readonly method: string;
  readonly path: string;
  /** The receiving node's id. */
  readonly target: string;
  readonly timestampMs: number;
  /** 32 lowercase hex digits. */
  readonly nonce: string;
  readonly bodyLength: number;
  /** 64 lowercase hex digits: SHA-256 of the body. */
  readonly bodySha256: string;
}

export function signRequest(key: string, request: SignedRequest): string {
  const { method, path, target, timestampMs, nonce, bodyLength, bodySha256 } = request;
  return createHmac('sha256', key)
    .update(`${SCHEME}\n${method.toUpperCase()}\n${path}\n${target}\n${timestampMs}\n${nonce}\n${bodyLength}\n${bodySha256}`)
    .digest('hex');
}

export function sha256Hex(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/** The headers of a signed internode request (besides `Content-Length`, which HTTP carries). */
export function authHeaders(key: string, method: string, path: string, target: string, timestampMs: number, body: Uint8Array): Record<string, string> {
  const nonce = newNonce();
  const bodySha256 = sha256Hex(body);
  const ts = Math.floor(timestampMs);
  return {
    [TIMESTAMP_HEADER]: String(ts),
    [NONCE_HEADER]: nonce,
    [DIGEST_HEADER]: bodySha256,
    [SIGNATURE_HEADER]: signRequest(key, { method, path, target, timestampMs: ts, nonce, bodyLength: body.byteLength, bodySha256 }),
  };
}

export type AuthFailureCode = 'UNAUTHENTICATED' | 'FORBIDDEN' | 'STALE_REQUEST' | 'REPLAYED' | 'BODY_MISMATCH' | 'CLOCK_SKEW';

export interface AuthFailure {
  readonly status: 401 | 403;
  readonly code: AuthFailureCode;
  readonly message: string;
  /** CLOCK_SKEW: this node's clock minus the request's timestamp (positive: the sender's clock is behind). */
  readonly offsetMs?: number;
}

/** Headers that passed: what the body must be. */
export interface Authenticated {
  readonly timestampMs: number;
  readonly nonce: string;
  /** Undefined on a node without a key: nothing to check the body against. */
  readonly bodySha256: string | undefined;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The header checks: signature, timestamp window (not the nonce: the caller
 * asks its `NonceCache` once this passed, so that only authenticated
 * requests take room in it). `bodyLength` is the request's `Content-Length`.
 * With several keys (a rotation, `ClusterKeys`) a signature made with any of
 * them passes; they are tried in order, so the primary costs one HMAC.
 */
export function checkHeaders(
  key: string | readonly string[] | undefined,
  request: { readonly method: string; readonly path: string; readonly target: string; readonly bodyLength: number },
  headers: { get(name: string): string | null | undefined },
  nowMs: number,
  maxClockSkewMs = DEFAULT_MAX_CLOCK_SKEW_MS,
): AuthFailure | Authenticated {
  if (typeof key === 'object') {
    if (key.length === 0) return checkHeaders(undefined, request, headers, nowMs, maxClockSkewMs);
    let result: AuthFailure | Authenticated = checkHeaders(key[0], request, headers, nowMs, maxClockSkewMs);
    // Only a signature that matched no key so far is worth another key; every other outcome holds for all keys.
    for (let i = 1; i < key.length && isAuthFailure(result) && result.code === 'FORBIDDEN'; i++) {
      result = checkHeaders(key[i], request, headers, nowMs, maxClockSkewMs);
    }
    return result;
  }
  const signature = headers.get(SIGNATURE_HEADER) ?? undefined;
  if (key === undefined || key === '') {
    if (signature !== undefined) return { status: 403, code: 'FORBIDDEN', message: 'this node has no cluster key; signed requests come from another cluster' };
    return { timestampMs: nowMs, nonce: '', bodySha256: undefined };
  }
  const stamp = headers.get(TIMESTAMP_HEADER) ?? undefined;
  const nonce = headers.get(NONCE_HEADER) ?? undefined;
  const digest = headers.get(DIGEST_HEADER) ?? undefined;
  if (signature === undefined || stamp === undefined || nonce === undefined || digest === undefined) {
    return { status: 401, code: 'UNAUTHENTICATED', message: 'internode requests need the cluster key' };
  }
  if (!HEX32.test(nonce) || !HEX64.test(digest)) return { status: 401, code: 'UNAUTHENTICATED', message: 'malformed nonce or body digest' };
  const ts = /^[0-9]{1,16}$/.test(stamp) ? Number(stamp) : NaN;
  if (!Number.isSafeInteger(ts)) return { status: 401, code: 'UNAUTHENTICATED', message: 'malformed request timestamp' };
  if (Math.abs(nowMs - ts) > maxClockSkewMs) {
    const offsetMs = Math.round(nowMs - ts);
    return {
      status: 401,
      code: 'CLOCK_SKEW',
      offsetMs,
      message:
        `clock skew, not a key problem: the request was stamped ${Math.abs(offsetMs)} ms ${offsetMs > 0 ? 'behind' : 'ahead of'} this node's clock, ` +
        `more than the ${maxClockSkewMs} ms internode requests allow; check the clocks (NTP) of both nodes`,
    };
  }
  const expected = Buffer.from(
    signRequest(key, { ...request, timestampMs: ts, nonce, bodySha256: digest }),
    'hex',
  );
  const given = HEX64.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { status: 403, code: 'FORBIDDEN', message: "the request was not signed with this cluster's key for this node" };
  }
  return { timestampMs: ts, nonce, bodySha256: digest };
}

export function isAuthFailure(x: AuthFailure | Authenticated): x is AuthFailure {
  return 'status' in x;
}
