/**
 * JSON answers for what never reaches the app: bytes Node's HTTP parser
 * refuses (`clientError`) and `CONNECT` requests, which Node hands to a
 * `connect` listener or else drops without a word. Call `guardServer` on the
 * server that `@hono/node-server`'s `serve` returns.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { HTTP_ERROR_STATUS, type HttpErrorCode } from './errors.ts';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
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

export function guardServer(server: Pick<Server, 'on'>): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: SocketWithMessage) => {
    // As Node's default: answer only when the socket can still take a whole response.
    if (error.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent === true) {
      socket.destroy();
      return;
    }
    const [code, message] = errorFor(error);
    socket.end(rawErrorResponse(code, message));
  });
  server.on('connect', (_request, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    socket.end(rawErrorResponse('METHOD_NOT_ALLOWED', 'CONNECT is not allowed; this is not a proxy', 'Allow: GET, HEAD, PUT, DELETE, POST, OPTIONS\r\n'));
  });
}
