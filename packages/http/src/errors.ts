/**
 * The error codes of the HTTP API and the status each one answers. Append
 * only: clients and scripts match on these codes. docs/api.md lists them.
 */
import { SERVICE_ERROR_STATUS } from '@hearsay/service';

export const HTTP_ERROR_STATUS = {
  // Codes a service raises (@hearsay/service): PRECONDITION_FAILED 412,
  // INSUFFICIENT_REPLICAS / UNAVAILABLE / TIMEOUT / BUSY 503, INVALID_CURSOR 400, CONFLICT 409, ...
  ...SERVICE_ERROR_STATUS,
  // 400: the request itself is wrong.
  KEY_EMPTY: 400,
  KEY_TOO_LONG: 400,
  INVALID_PERCENT_ENCODING: 400,
  INVALID_UTF8: 400,
  UNKNOWN_PARAMETER: 400,
  INVALID_PARAMETER: 400,
  INVALID_HEADER: 400,
  INCOMPLETE_BODY: 400,
  /** Refused by the HTTP parser before the app (see server-guards.ts). */
  MALFORMED_REQUEST: 400,
  // 401: no token, or one the node does not accept (see access.ts)
  UNAUTHENTICATED: 401,
  // 403: a valid token without the scope or key prefix the request needs
  FORBIDDEN: 403,
  // 404
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  // 405
  METHOD_NOT_ALLOWED: 405,
  // 408, from the server guards
  REQUEST_TIMEOUT: 408,
  // 413
  VALUE_TOO_LARGE: 413,
  // 415
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNSUPPORTED_CONTENT_ENCODING: 415,
  // 431, from the server guards
  HEADERS_TOO_LARGE: 431,
  // 500: a bug, never bad input.
  INTERNAL: 500,
  // 503
  NOT_SERVING: 503,
} as const;

export type HttpErrorCode = keyof typeof HTTP_ERROR_STATUS;

export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' } as const;
/** Every 503 says when to try again: the node is overloaded, starting, stopping or short of replicas for a moment. */
export const RETRY_AFTER_S = 1;
const UNAVAILABLE_HEADERS = { ...JSON_HEADERS, 'retry-after': String(RETRY_AFTER_S) } as const;

/** `{ "error": { "code", "message", ...details } }` with the code's status; a 503 carries `Retry-After`. */
export function errorResponse(
  code: HttpErrorCode,
  message: string,
  details?: ErrorDetails,
  headers?: Record<string, string>,
): Response {
  const body = JSON.stringify({ error: { ...details, code, message } });
  const status = HTTP_ERROR_STATUS[code];
  const base = status === 503 ? UNAVAILABLE_HEADERS : JSON_HEADERS;
  return new Response(body, { status, headers: headers === undefined ? base : { ...base, ...headers } });
}

/** A 200 JSON answer. */
export function jsonResponse(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: headers === undefined ? JSON_HEADERS : { ...JSON_HEADERS, ...headers },
  });
}
