/**
 * Raw HTTP/1.1 exchanges for the server tests: bytes in, everything the
 * server sends until it closes, and the responses in it walked by their
 * framing. The connection is the caller's (plain TCP or TLS).
 */
import type { Duplex } from 'node:stream';
import { HTTP_ERROR_STATUS } from '../src/errors.ts';

/** Sends the bytes on a fresh connection, half-closes, and collects everything until the server closes (or fails at the deadline). */
export function exchange(connect: () => Duplex, bytes: Uint8Array, deadlineMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${deadlineMs} ms; got ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`));
    }, deadlineMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset after the answer is fine; the answer is what we check
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.end(bytes);
  });
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*\r\n/;

export interface Answer {
  readonly status: number;
  /** The body when the response is framed by Content-Length; undefined otherwise. */
  readonly body: string | undefined;
}

/** The responses in `data`, walking their framing, or what is wrong with it. */
export function answersOf(data: Buffer): Answer[] | string {
  const answers: Answer[] = [];
  let rest = data.toString('latin1');
  while (rest.length > 0) {
    const line = STATUS_LINE.exec(rest);
    if (line === null) return `not an HTTP response: ${JSON.stringify(rest.slice(0, 120))}`;
    const status = Number(line[1]);
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd === -1) return `response head does not end: ${JSON.stringify(rest.slice(0, 120))}`;
    const head = rest.slice(0, headEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
    let next = headEnd + 4;
    let body: string | undefined;
    if (status === 100 || rest.startsWith('HTTP/1.', next)) {
      // An interim answer, or one to HEAD (Content-Length but no body): the next response follows at once.
    } else if (chunked) {
      const end = rest.indexOf('\r\n0\r\n\r\n', next - 2);
      if (end === -1) return 'chunked body does not end';
      next = end + 7;
    } else if (length !== null && status !== 304 && status !== 204) {
      body = rest.slice(next, next + Number(length[1]));
      next += Number(length[1]);
    } else if (status !== 204 && status !== 304 && length === null) {
      // Close-delimited: the rest belongs to this response.
      next = rest.length;
    }
    answers.push({ status, body });
    rest = rest.slice(next);
  }
  return answers;
}

/** A non-empty error body is our JSON with a listed code, whoever answered (app, guards, request errors). */
export function errorCodeOf(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' && Object.hasOwn(HTTP_ERROR_STATUS, code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `run(0)` to `run(count - 1)`, `parallel` at a time. */
export async function inParallel(parallel: number, count: number, run: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}
