/**
 * Reading keys and query parameters from the request URL. Hono routes on a
 * leniently decoded path; we decode the raw URL ourselves so that bad
 * percent-encoding and bad UTF-8 are refused instead of guessed at.
 *
 * Requests reach the app with WHATWG-serialised URLs, so `.` and `..` path
 * segments (also `%2E`) have already been resolved: such keys cannot be
 * addressed over HTTP.
 */
import { percentDecode, type DecodeFailure } from './percent.ts';

export type KeyFailure = DecodeFailure | 'KEY_EMPTY' | 'KEY_TOO_LONG';

export type KeyResult = { readonly ok: true; readonly key: string } | { readonly ok: false; readonly code: KeyFailure; readonly message: string };

/** Index of the first `?` or `#` at or after `from`, or the length. */
function pathEnd(url: string, from: number): number {
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 63 || c === 35) return i;
  }
  return url.length;
}

function pathStart(url: string): number {
  const scheme = url.indexOf('://');
  // A path-only URL ("/v1/kv/a") starts at 0.
  return scheme === -1 ? 0 : url.indexOf('/', scheme + 3);
}

/**
 * The key of `/v1/kv/{key}`: everything after the third `/` of the path,
 * percent-decoded as UTF-8, 1 to `maxKeyBytes` bytes.
 */
export function keyFromUrl(url: string, maxKeyBytes: number): KeyResult {
  const start = pathStart(url);
  const end = pathEnd(url, start);
  const second = url.indexOf('/', start + 1);
  const third = second === -1 ? -1 : url.indexOf('/', second + 1);
  if (start === -1 || third === -1 || third >= end) return { ok: false, code: 'KEY_EMPTY', message: 'the key is empty' };
  const raw = url.slice(third + 1, end);
  if (raw.length === 0) return { ok: false, code: 'KEY_EMPTY', message: 'the key is empty' };
  // Each byte of the key takes at most 3 characters of the URL.
  if (raw.length > maxKeyBytes * 3) return tooLong(maxKeyBytes);
  const decoded = percentDecode(raw);
  if (!decoded.ok) return { ok: false, code: decoded.code, message: failureMessage(decoded.code, 'key') };
  if (decoded.bytes === 0) return { ok: false, code: 'KEY_EMPTY', message: 'the key is empty' };
  if (decoded.bytes > maxKeyBytes) return tooLong(maxKeyBytes);
  return { ok: true, key: decoded.value };
}

function tooLong(maxKeyBytes: number): KeyResult {
  return { ok: false, code: 'KEY_TOO_LONG', message: `the key is longer than ${maxKeyBytes} bytes` };
}

export function failureMessage(code: DecodeFailure, what: string): string {
  return code === 'INVALID_PERCENT_ENCODING'
    ? `the ${what} has a % not followed by two hex digits`
    : `the ${what} is not valid UTF-8 once percent-decoded`;
}

export type QueryFailure = DecodeFailure | 'UNKNOWN_PARAMETER' | 'INVALID_PARAMETER';

export type QueryResult =
  | { readonly ok: true; readonly params: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly code: QueryFailure; readonly message: string };

const NO_PARAMS: ReadonlyMap<string, string> = new Map();
const NONE: QueryResult = { ok: true, params: NO_PARAMS };

/**
 * The query parameters of `url`, decoded strictly (`+` is a space). A name
 * outside `allowed` is `UNKNOWN_PARAMETER`; a name given twice is
 * `INVALID_PARAMETER`.
 */
export function parseQuery(url: string, allowed: ReadonlySet<string>): QueryResult {
  const q = url.indexOf('?');
  if (q === -1) return NONE;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash === -1 ? url.length : hash);
  if (query.length === 0) return NONE;
  const params = new Map<string, string>();
  for (const part of query.split('&')) {
    if (part.length === 0) continue; // "a=1&&b=2" and a trailing "&"
    const eq = part.indexOf('=');
    const name = percentDecode(eq === -1 ? part : part.slice(0, eq), true);
    if (!name.ok) return { ok: false, code: name.code, message: failureMessage(name.code, 'query parameter name') };
    if (!allowed.has(name.value)) {
      return { ok: false, code: 'UNKNOWN_PARAMETER', message: `unknown query parameter ${JSON.stringify(name.value.slice(0, 64))}; this route takes ${[...allowed].join(', ') || 'none'}` };
    }
    const value = percentDecode(eq === -1 ? '' : part.slice(eq + 1), true);
    if (!value.ok) return { ok: false, code: value.code, message: failureMessage(value.code, `value of ${name.value}`) };
    if (params.has(name.value)) return { ok: false, code: 'INVALID_PARAMETER', message: `query parameter ${name.value} is given more than once` };
    params.set(name.value, value.value);
  }
  return { ok: true, params };
}
