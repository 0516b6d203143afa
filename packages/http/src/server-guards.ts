/**
 * JSON answers for what never reaches the app: bytes Node's HTTP parser
 * refuses (`clientError`) and `CONNECT` requests, which Node hands to a
 * `connect` listener or else drops without a word. And `Expect:
 * 100-continue`: Node says "continue" to every such request unless told
 * otherwise, inviting a client to upload a body the app will refuse. Call
 * `guardServer` on the server that `@hono/node-server`'s `serve` returns.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorResponse, HTTP_ERROR_STATUS, type HttpErrorCode } from './errors.ts';
import type { LoadLimits } from './load-limits.ts';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** Bytes of a complete `Connection: close` error response. */
export function rawErrorResponse(code: HttpErrorCode, message: string, extraHeaders = ''): string {
  const status = HTTP_ERROR_STATUS[code];
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n${extraHeaders}\r\n${body}`
  );
}

function errorFor(error: NodeJS.ErrnoException): [HttpErrorCode, string] {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return ['HEADERS_TOO_LARGE', 'the request head is larger than the server accepts'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT': // not a Node code today; kept in case one is added
      return ['REQUEST_TIMEOUT', 'the request did not arrive in time'];
    default:
      return ['MALFORMED_REQUEST', `the request is not valid HTTP/1.1 (${error.code ?? 'parse error'})`];
  }
}

interface SocketWithMessage extends Duplex {
  readonly _httpMessage?: { readonly headersSent?: boolean } | null;
}

export interface GuardOptions {
  /**
   * With `Expect: 100-continue`, a request whose `Content-Length` is over
   * this goes to the app without "100 Continue" (the app answers 413 and
   * closes); others get "100 Continue" first. Pass `app.limits`. Left out,
   * Node's default (always continue) stays.
   */
  readonly maxValueBytes?: number;
  /** Where requests that timed out (408) are counted, as `request_timeout` refusals. */
  readonly load?: LoadLimits;
}

export function guardServer(server: Pick<Server, 'on' | 'emit'>, options: GuardOptions = {}): void {
  const maxValueBytes = options.maxValueBytes;
  if (maxValueBytes !== undefined) {
    server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
      const declared = Number(request.headers['content-length']);
      if (!(declared > maxValueBytes)) response.writeContinue();
      server.emit('request', request, response);
    });
  }
  server.on('clientError', (error: NodeJS.ErrnoException, socket: SocketWithMessage) => {
    const [code, message] = errorFor(error);
    if (code === 'REQUEST_TIMEOUT') options.load?.refused('request_timeout');
    // As Node's default: answer only when the socket can still take a whole response.
    if (error.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent === true) {
      socket.destroy();
      return;
    }
    socket.end(rawErrorResponse(code, message));
  });
  server.on('connect', (_request, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    socket.end(rawErrorResponse('METHOD_NOT_ALLOWED', 'CONNECT is not allowed; this is not a proxy', 'Allow: GET, HEAD, PUT, DELETE, POST, OPTIONS\r\n'));
  });
}

/**
 * The `errorHandler` for `@hono/node-server`'s `getRequestListener`: it is
 * called when a request cannot be turned into a `Request` (a backslash in
 * the path, an invalid `Host`), which otherwise gets a bare empty 400.
 *
 *   createServer(getRequestListener(app.fetch, { errorHandler: requestErrorResponse }))
 */
export function requestErrorResponse(error: unknown): Response {
  if (error instanceof Error && error.name === 'RequestError') {
    return errorResponse('MALFORMED_REQUEST', `the request cannot be read: ${error.message}`);
  }
  // The app answers its own errors; anything here escaped it.
  return errorResponse('INTERNAL', 'internal error');
}
