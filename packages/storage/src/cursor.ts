import { StorageError } from './errors.ts';
import { KEY_MAX_BYTES } from './record.ts';

/**
 * The cursor of a key listing: "resume after this key". One codec for every
 * listing of the repo — a store's `scan` and a cluster's merged listing —
 * so a cursor means the same wherever it was made.
 *
 * Form: base64url (no padding) of a tag byte and the key's UTF-8 bytes. The
 * tag names what follows; tags are append-only (`k`: a key to resume
 * after). Opaque to callers: they hand back the `next` of a previous page.
 * Decoding accepts only what `encodeCursor` produces (canonical base64url, a
 * known tag, a well-formed key), so a made-up or damaged cursor is refused
 * rather than read as some other position.
 */
const TAG_AFTER_KEY = 0x6b; // 'k'
const CURSOR_PATTERN = /^[A-Za-z0-9_-]+$/;
/** Characters of the longest cursor: tag + KEY_MAX_BYTES bytes in base64url. */
export const CURSOR_MAX_CHARS = Math.ceil(((1 + KEY_MAX_BYTES) * 4) / 3);
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** The cursor that resumes a listing after `key`. */
export function encodeCursor(key: string): string {
  const bytes = Buffer.allocUnsafe(1 + Buffer.byteLength(key, 'utf8'));
  bytes[0] = TAG_AFTER_KEY;
  bytes.write(key, 1, 'utf8');
  return bytes.toString('base64url');
}

/** The key a cursor resumes after. Throws INVALID_CURSOR for anything `encodeCursor` did not make. */
export function decodeCursor(cursor: unknown): string {
  if (typeof cursor !== 'string' || cursor.length > CURSOR_MAX_CHARS || !CURSOR_PATTERN.test(cursor)) throw invalidCursor();
  const bytes = Buffer.from(cursor, 'base64url');
  if (bytes.length < 2 || bytes[0] !== TAG_AFTER_KEY || bytes.toString('base64url') !== cursor) throw invalidCursor();
  try {
    return utf8Fatal.decode(bytes.subarray(1));
  } catch {
    throw invalidCursor();
  }
}

function invalidCursor(): StorageError {
  return new StorageError('INVALID_CURSOR', 'malformed cursor: give the `next` of a previous page');
}
