/**
 * Strict percent-decoding of URL components into UTF-8 strings. Unlike
 * `decodeURIComponent` it names what is wrong, and it never throws.
 */

export type DecodeFailure = 'INVALID_PERCENT_ENCODING' | 'INVALID_UTF8';

export type Decoded = { readonly ok: true; readonly value: string; readonly bytes: number } | { readonly ok: false; readonly code: DecodeFailure };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 65 && code <= 70) return code - 55; // A-F
  if (code >= 97 && code <= 102) return code - 87; // a-f
  return -1;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** False for strings with lone surrogates, which have no UTF-8 form. */
function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Decodes `%XX` escapes; with `plusIsSpace` (query strings) a `+` is a
 * space. Characters that are not escaped stand for their own UTF-8 bytes.
 * `bytes` is the UTF-8 length of the result.
 */
export function percentDecode(raw: string, plusIsSpace = false): Decoded {
  const hasPercent = raw.indexOf('%') !== -1;
  const hasPlus = plusIsSpace && raw.indexOf('+') !== -1;
  if (!hasPercent && !hasPlus) {
    // Fast path: URLs reach us serialised, so this is nearly always ASCII.
    if (isAscii(raw)) return { ok: true, value: raw, bytes: raw.length };
    if (!isWellFormed(raw)) return { ok: false, code: 'INVALID_UTF8' };
    return { ok: true, value: raw, bytes: Buffer.byteLength(raw, 'utf8') };
  }
  if (!isWellFormed(raw)) return { ok: false, code: 'INVALID_UTF8' };
  const source = isAscii(raw) ? null : encoder.encode(raw);
  const length = source === null ? raw.length : source.length;
  const out = new Uint8Array(length);
  let n = 0;
  for (let i = 0; i < length; i++) {
    const c = source === null ? raw.charCodeAt(i) : source[i]!;
    if (c === 37) {
      if (i + 2 >= length) return { ok: false, code: 'INVALID_PERCENT_ENCODING' };
      const hi = hexValue(source === null ? raw.charCodeAt(i + 1) : source[i + 1]!);
      const lo = hexValue(source === null ? raw.charCodeAt(i + 2) : source[i + 2]!);
      if (hi < 0 || lo < 0) return { ok: false, code: 'INVALID_PERCENT_ENCODING' };
      out[n++] = hi * 16 + lo;
      i += 2;
    } else if (c === 43 && plusIsSpace) {
      out[n++] = 32;
    } else {
      out[n++] = c;
    }
  }
  let value: string;
  try {
    value = utf8.decode(out.subarray(0, n));
  } catch {
    return { ok: false, code: 'INVALID_UTF8' };
  }
  return { ok: true, value, bytes: n };
}
