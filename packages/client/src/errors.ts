/**
 * Error codes the client itself produces. Every other code on a
 * `HearsayError` is the server's `error.code`, passed through unchanged.
 */
export const CLIENT_ERROR_CODES = {
  /** The request never got an HTTP answer: connection refused, reset, DNS. */
  NETWORK_ERROR: 'NETWORK_ERROR',
  /** No answer within `timeoutMs`. */
  TIMEOUT: 'TIMEOUT',
  /** The caller's `AbortSignal` fired. */
  ABORTED: 'ABORTED',
  /** The server answered, but not in the shape API v1 promises. */
  BAD_RESPONSE: 'BAD_RESPONSE',
  /** The caller passed something the API cannot express (e.g. an empty key). */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
} as const;

export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[keyof typeof CLIENT_ERROR_CODES];

/**
 * Every failure of a client call. `code` is the server's stable
 * UPPER_SNAKE code (`PRECONDITION_FAILED`, `VALUE_TOO_LARGE`, ...) or one of
 * `CLIENT_ERROR_CODES`; `status` is the HTTP status, or 0 when there was no
 * HTTP answer.
 */
export class HearsayError extends Error {
  override readonly name = 'HearsayError';
  readonly code: string;
  readonly status: number;
  /** The other fields of the server's `error` object, e.g. `{ acknowledged, required }` of `INSUFFICIENT_REPLICAS`. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, status: number, options?: { cause?: unknown; details?: Readonly<Record<string, unknown>> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.details = options?.details ?? {};
  }
}

export function isHearsayError(error: unknown, code?: string): error is HearsayError {
  return error instanceof HearsayError && (code === undefined || error.code === code);
}
