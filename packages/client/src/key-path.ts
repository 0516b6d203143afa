import { CLIENT_ERROR_CODES, HearsayError } from './errors.ts';

/**
 * The path of a key under `/v1/kv/`. Slashes stay readable, except when a
 * segment is `.` or `..`: fetch's URL parser would resolve those (also when
 * percent-encoded), so then every `/` is sent as `%2F`, which the server
 * decodes back to `/` (docs/api.md: the key is the percent-decoded rest of the
 * path). Length limits are the server's to enforce (they are configurable).
 */
export function encodeKeyPath(key: string): string {
  if (key.length === 0) {
    throw new HearsayError(CLIENT_ERROR_CODES.INVALID_ARGUMENT, 'key must not be empty', 0);
  }
  try {
    const segments = key.split('/');
    if (segments.some((segment) => segment === '.' || segment === '..')) {
      return encodeURIComponent(key);
    }
    return segments.map(encodeURIComponent).join('/');
  } catch (error) {
    // encodeURIComponent throws URIError on a lone surrogate: such a key has no UTF-8 form.
    throw new HearsayError(CLIENT_ERROR_CODES.INVALID_ARGUMENT, 'key must be valid Unicode (it contains a lone surrogate)', 0, { cause: error });
  }
}
