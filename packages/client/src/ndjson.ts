import { CLIENT_ERROR_CODES, HearsayError } from './errors.ts';

/** A progress line longer than this is not what the server sends; refuse it rather than buffer without bound. */
export const NDJSON_LINE_BYTES_MAX = 1024 * 1024;

/**
 * Parse a stream of newline-delimited JSON into values, one per non-empty
 * line. A final line without a trailing newline is parsed too.
 */
export async function* readNdjson(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown, void, undefined> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const reader = body.getReader();
  let buffered = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffered += decodeUtf8(decoder, done ? undefined : value);
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() !== '') yield parseLine(line);
        newline = buffered.indexOf('\n');
      }
      if (buffered.length > NDJSON_LINE_BYTES_MAX) {
        throw new HearsayError(CLIENT_ERROR_CODES.BAD_RESPONSE, `NDJSON line longer than ${NDJSON_LINE_BYTES_MAX} bytes`, 200);
      }
      if (done) break;
    }
    if (buffered.trim() !== '') yield parseLine(buffered);
  } finally {
    // Stops the download when the consumer breaks out of the loop early.
    await reader.cancel().catch(() => undefined);
  }
}

function decodeUtf8(decoder: InstanceType<typeof TextDecoder>, chunk: Uint8Array | undefined): string {
  try {
    return chunk === undefined ? decoder.decode() : decoder.decode(chunk, { stream: true });
  } catch (error) {
    throw new HearsayError(CLIENT_ERROR_CODES.BAD_RESPONSE, 'NDJSON answer is not valid UTF-8', 200, { cause: error });
  }
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch (error) {
    throw new HearsayError(CLIENT_ERROR_CODES.BAD_RESPONSE, `invalid NDJSON line: ${line.slice(0, 200)}`, 200, { cause: error });
  }
}
