/**
 * Reading a PUT body within the value limit. A declared `Content-Length`
 * over the limit is refused before any byte is read; a body without one
 * (chunked) is streamed and stops being kept as soon as it passes the limit,
 * so a node never buffers more than `maxBytes` plus one chunk.
 *
 * A refused body is still read and thrown away, up to `MAX_DISCARD_BYTES`:
 * a client that is still sending when the answer comes (most do not wait
 * for "100 Continue") would otherwise have its connection reset under it
 * and never see the 413. Past that bound the connection is closed.
 */

/** Bytes of a refused request body a node reads and throws away so the client sees its answer. */
export const MAX_DISCARD_BYTES = 64 * 1024 * 1024;

export type BodyResult =
  | { readonly ok: true; readonly value: Uint8Array }
  | {
      readonly ok: false;
      readonly code: 'VALUE_TOO_LARGE' | 'INCOMPLETE_BODY' | 'INVALID_HEADER';
      readonly message: string;
      /** The rest of the body cannot be thrown away within `MAX_DISCARD_BYTES`: answer with `Connection: close`. */
      readonly close?: boolean;
    };

const EMPTY = new Uint8Array(0);
const DIGITS = /^\d{1,16}$/;

function tooLarge(maxBytes: number, close = false): BodyResult {
  const message = `the value is larger than ${maxBytes} bytes`;
  return close ? { ok: false, code: 'VALUE_TOO_LARGE', message, close } : { ok: false, code: 'VALUE_TOO_LARGE', message };
}

function incomplete(): BodyResult {
  return { ok: false, code: 'INCOMPLETE_BODY', message: 'the request body ended early or could not be read' };
}

/**
 * The body as a buffer of its own (exact size, not a view into a larger
 * one), so a service may keep it (`KvService.put`). Not an async function:
 * with a `Content-Length` it answers straight from the body read.
 */
export function readBodyWithin(request: Request, contentLength: string | null, maxBytes: number): Promise<BodyResult> {
  if (contentLength === null) return readChunked(request, maxBytes);
  if (!DIGITS.test(contentLength)) return Promise.resolve({ ok: false, code: 'INVALID_HEADER', message: 'Content-Length is not a decimal number' });
  // Not read here: the server throws the body away after the answer (the node bounds that by MAX_DISCARD_BYTES).
  if (Number(contentLength) > maxBytes) return Promise.resolve(tooLarge(maxBytes, Number(contentLength) > MAX_DISCARD_BYTES));
  if (contentLength === '0') return Promise.resolve({ ok: true, value: EMPTY });
  let read: Promise<ArrayBuffer>;
  try {
    read = request.arrayBuffer();
  } catch {
    return Promise.resolve(incomplete());
  }
  // The HTTP parser holds the body to its declared length; re-check for adapters that do not.
  return read.then(
    (buffer): BodyResult => (buffer.byteLength > maxBytes ? tooLarge(maxBytes) : { ok: true, value: new Uint8Array(buffer) }),
    incomplete,
  );
}

async function readChunked(request: Request, maxBytes: number): Promise<BodyResult> {
  const body = request.body;
  if (body === null) return { ok: true, value: EMPTY };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) return await discardRest(reader, maxBytes, total);
      chunks.push(value);
    }
  } catch {
    return incomplete();
  }
  const only = chunks.length === 1 ? chunks[0]! : undefined;
  // A lone chunk may be a view into a larger buffer (a socket read): copied, so keeping it keeps no more than the body.
  if (only !== undefined && only.byteOffset === 0 && only.byteLength === only.buffer.byteLength) return { ok: true, value: only };
  const value = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    value.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, value };
}

/** Reads and drops the rest of an over-limit chunked body, up to MAX_DISCARD_BYTES; past that, stops reading and says close. */
async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>, maxBytes: number, readSoFar: number): Promise<BodyResult> {
  let total = readSoFar;
  while (total <= MAX_DISCARD_BYTES) {
    const { done, value } = await reader.read();
    if (done) return tooLarge(maxBytes);
    total += value.byteLength;
  }
  reader.cancel().catch(() => {});
  return tooLarge(maxBytes, true);
}
