/**
 * Seeded generators of malformed requests for fuzz tests: `fetchRequest`
 * for anything a `Request` can carry (odd paths, keys, queries, headers,
 * methods, body sizes) and `rawRequest` for bytes no HTTP client would send.
 * Exported for tests elsewhere in the repo; the sentinel prefix is never
 * generated, so keys under it survive a fuzz run.
 */

export const SENTINEL_PREFIX = 'sentinel~';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  int(maxExclusive: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32: small, fast, good enough to pick test cases. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (maxExclusive: number): number => Math.floor(next() * maxExclusive);
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)]!,
    chance: (p: number) => next() < p,
  };
}

const PRINTABLE = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~';
const HEX = '0123456789ABCDEFabcdef';

function randomString(rng: Rng, alphabet: string, maxLength: number): string {
  const length = rng.int(maxLength + 1);
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[rng.int(alphabet.length)];
  return s;
}

function randomBytes(rng: Rng, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = rng.int(256);
  return bytes;
}

/** A percent-escape: valid hex (of any byte, so often bad UTF-8), bad hex, or cut short. */
function escape(rng: Rng): string {
  switch (rng.int(4)) {
    case 0:
      return `%${HEX[rng.int(HEX.length)]}${HEX[rng.int(HEX.length)]}`;
    case 1:
      return `%${rng.pick(['zz', 'G1', '1', '', '%', '-1'])}`;
    case 2:
      return rng.pick(['%C3%A9', '%E2%82%AC', '%F0%9F%98%80', '%2F', '%00', '%20', '%2E%2E', '%3F', '%23']);
    default:
      return rng.pick(['%C3', '%ED%A0%80', '%C0%AF', '%FF', '%F8%88%80%80%80', '%E2%82']);
  }
}

function randomKeyText(rng: Rng): string {
  switch (rng.int(7)) {
    case 0:
      return randomString(rng, 'abcxyz019-_.~/', 24);
    case 1: {
      let s = '';
      const parts = rng.int(6);
      for (let i = 0; i < parts; i++) s += rng.chance(0.5) ? escape(rng) : randomString(rng, 'ab/.', 3);
      return s;
    }
    case 2:
      return rng.pick(['', '/', '//', '.', '..', 'a/../b', './a', 'a/./b', '...', 'é€😀', '\u0000', 'a b', 'a\tb', '\\a']);
    case 3:
      return 'k'.repeat(rng.pick([1023, 1024, 1025, 3000]));
    case 4:
      return '%41'.repeat(rng.pick([341, 1024, 1025]));
    case 5:
      return randomString(rng, PRINTABLE, 40);
    default:
      return `fuzz/${rng.int(50)}`; // a small key space so writes, reads and conditionals collide
  }
}

function randomQuery(rng: Rng): string {
  if (rng.chance(0.4)) return '';
  const names = ['consistency', 'prefix', 'limit', 'cursor', 'unknown', '', 'consistency', '%zz', 'a+b'];
  const values = ['one', 'quorum', 'all', 'ONE', '', '0', '1', '1000', '1001', '-5', '1e3', 'abc', '%', '%FF', 'fuzz%2F', '+', 'a=b'];
  const parts: string[] = [];
  const count = 1 + rng.int(3);
  for (let i = 0; i < count; i++) {
    const name = rng.pick(names);
    parts.push(rng.chance(0.1) ? name : `${name}=${rng.chance(0.2) ? escape(rng) : rng.pick(values)}`);
  }
  return `?${parts.join(rng.pick(['&', '&&', ';']))}${rng.chance(0.05) ? '#frag' : ''}`;
}

export function randomPath(rng: Rng): string {
  const route = rng.int(12);
  switch (route) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      return `/v1/kv/${randomKeyText(rng)}${randomQuery(rng)}`;
    case 5:
      return `/v1/kv${randomQuery(rng)}`;
    case 6:
      // These routes take no parameter: any query string is refused, so most go without one.
      return rng.pick(['/v1/cluster', '/v1/health', '/v1/repair', '/metrics', '/v1/openapi.json']) + (rng.chance(0.75) ? '' : randomQuery(rng));
    case 7:
      return rng.pick(['/', '/v1', '/v1/', '/v1/kv/', '/v1//kv/a', '/V1/KV/a', '/v1/kv%2Fa', '/internal/x', '/v1/k%76/a']);
    case 8:
      return `/${randomString(rng, PRINTABLE, 30)}`;
    case 9:
      return `/v1/kv/${escape(rng)}${escape(rng)}${escape(rng)}`;
    case 10:
      return `/${'x/'.repeat(rng.int(300))}`;
    default:
      return `/v1/kv/${randomString(rng, 'ab%', 10)}`;
  }
}

const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'PUT', 'PUT', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS', 'PROPFIND', 'FROB', 'get', 'put', 'M-SEARCH'];

const HEADER_CHOICES: readonly (readonly [string, readonly string[]])[] = [
  ['content-type', ['text/plain', 'application/json; charset=utf-8', 'garbage', 'text/', '', 'a/b; c', `x/${'y'.repeat(300)}`, 'multipart/form-data; boundary=x']],
  ['if-match', ['*', '"1.0.node-1"', 'W/"x"', '"unterminated', 'bare', '"a", "b"', '', '"9999999999999999.0.x"', '"1.2147483648.n"']],
  ['if-none-match', ['*', '"x"', 'W/"x"', '"a", W/"b"', 'bad', '', ',,,']],
  ['content-encoding', ['gzip', 'identity', 'br, gzip', '']],
  ['accept', ['*/*', 'application/json', 'text/html', '']],
  ['x-random', ['1', 'é', '\u00ff', '']],
];

export interface FetchCase {
  readonly method: string;
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  /** Null for GET and HEAD, which cannot carry one through `fetch`. */
  readonly body: Uint8Array | null;
}

/**
 * `Authorization` values for a node that checks tokens: mostly the given
 * valid ones (so the cases still reach the routes), else none or garbage.
 */
export function authorizationHeader(rng: Rng, tokens: readonly string[]): string | undefined {
  if (tokens.length > 0 && rng.chance(0.85)) return `Bearer ${rng.pick(tokens)}`;
  return rng.pick([
    undefined,
    'Bearer',
    'Bearer ',
    'Basic dXNlcjpwYXNz',
    'Bearer hs1..',
    `Bearer hs1.x.${'A'.repeat(43)}`,
    `Bearer ${'A'.repeat(5000)}`,
    `Bearer ${tokens[0] ?? 'x'}, Bearer x`,
    'bearer \u00ff',
    '',
  ]);
}

export function fetchRequest(rng: Rng, tokens?: readonly string[]): FetchCase {
  const method = rng.pick(METHODS);
  const path = randomPath(rng);
  const headers: [string, string][] = [];
  if (tokens !== undefined) {
    const authorization = authorizationHeader(rng, tokens);
    if (authorization !== undefined) headers.push(['authorization', authorization]);
  }
  const headerCount = rng.int(4);
  for (let i = 0; i < headerCount; i++) {
    const [name, values] = rng.pick(HEADER_CHOICES);
    headers.push([name, rng.pick(values)]);
  }
  const upper = method.toUpperCase();
  const canHaveBody = upper !== 'GET' && upper !== 'HEAD';
  const length = rng.pick([0, 1, 10, 100, 4095, 4096, 4097, 20_000]);
  return { method, path, headers, body: canHaveBody && rng.chance(0.8) ? randomBytes(rng, length) : null };
}

export function describeFetchCase(c: FetchCase): string {
  return `${c.method} ${c.path.length > 200 ? `${c.path.slice(0, 200)}...(${c.path.length})` : c.path} headers=${JSON.stringify(c.headers)} body=${c.body === null ? 'none' : `${c.body.byteLength} bytes`}`;
}

export interface RawCase {
  readonly kind: string;
  readonly bytes: Uint8Array;
  /** True when the request is cut short on purpose: the server may close without answering. */
  readonly incomplete: boolean;
}

function concat(...parts: (string | Uint8Array)[]): Uint8Array {
  const buffers = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p));
  return Buffer.concat(buffers);
}

/** Bytes of an HTTP/1.x exchange that go wrong at one place or another. */
export function rawRequest(rng: Rng, tokens?: readonly string[]): RawCase {
  const path = randomPath(rng);
  const authorization = tokens === undefined ? undefined : authorizationHeader(rng, tokens);
  const host = `Host: 127.0.0.1\r\n${authorization === undefined ? '' : `Authorization: ${authorization}\r\n`}`;
  const kind = rng.pick([
    'bad-version',
    'bare-lf',
    'no-colon-header',
    'space-in-header-name',
    'nul-in-path',
    'non-ascii-path',
    'obs-fold',
    'conflicting-content-length',
    'content-length-and-chunked',
    'bad-chunk-size',
    'chunked-over-limit',
    'chunked-ok',
    'negative-content-length',
    'huge-content-length',
    'short-body',
    'huge-header',
    'many-headers',
    'absolute-form',
    'asterisk-form',
    'connect',
    'no-host',
    'bad-host',
    'http-0.9',
    'random-bytes',
    'pipelined',
    'lowercase-method',
    'long-method',
    'backslash-path',
    'valid',
  ] as const);
  const method = rng.pick(['GET', 'PUT', 'DELETE', 'HEAD', 'POST']);
  const line = `${method} ${path} HTTP/1.1\r\n`;
  const value = randomBytes(rng, rng.pick([0, 5, 100]));
  const withBody = (headers: string, body: Uint8Array | string = value): Uint8Array =>
    concat(line, host, headers, `Content-Length: ${typeof body === 'string' ? Buffer.byteLength(body, 'latin1') : body.byteLength}\r\n\r\n`, body);
  switch (kind) {
    case 'bad-version':
      return { kind, bytes: concat(`${method} ${path} ${rng.pick(['HTTP/9.9', 'HTTP/1.1x', 'HTTP/', 'HTTPS/1.1', 'http/1.1', 'HTTP/1.10'])}\r\n`, host, '\r\n'), incomplete: false };
    case 'bare-lf':
      return { kind, bytes: concat(`${method} ${path} HTTP/1.1\n`, 'Host: x\n', 'Content-Length: 0\n\n'), incomplete: false };
    case 'no-colon-header':
      return { kind, bytes: concat(line, host, 'NoColonHere\r\n\r\n'), incomplete: false };
    case 'space-in-header-name':
      return { kind, bytes: concat(line, host, 'Bad Name: x\r\n\r\n'), incomplete: false };
    case 'nul-in-path':
      return { kind, bytes: concat(`${method} /v1/kv/a\u0000b HTTP/1.1\r\n`, host, '\r\n'), incomplete: false };
    case 'non-ascii-path':
      return { kind, bytes: concat(`${method} /v1/kv/`, randomBytes(rng, 1 + rng.int(8)).map((b) => b | 0x80), ' HTTP/1.1\r\n', host, '\r\n'), incomplete: false };
    case 'obs-fold':
      return { kind, bytes: concat(line, host, 'X-Folded: a\r\n  b\r\n\r\n'), incomplete: false };
    case 'conflicting-content-length':
      return { kind, bytes: concat(line, host, 'Content-Length: 1\r\nContent-Length: 2\r\n\r\nab'), incomplete: false };
    case 'content-length-and-chunked':
      return { kind, bytes: concat(line, host, 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'), incomplete: false };
    case 'bad-chunk-size':
      return { kind, bytes: concat(`PUT /v1/kv/fuzz/chunk HTTP/1.1\r\n`, host, 'Transfer-Encoding: chunked\r\n\r\n', rng.pick(['zz', '-1', '9999999999999999', '3;ext="\u0001"', '']), '\r\nabc\r\n0\r\n\r\n'), incomplete: false };
    case 'chunked-over-limit': {
      const chunk = 'x'.repeat(1000);
      let body = '';
      for (let i = 0; i < 6; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
      return { kind, bytes: concat(`PUT /v1/kv/fuzz/big HTTP/1.1\r\n`, host, 'Transfer-Encoding: chunked\r\n\r\n', body, '0\r\n\r\n'), incomplete: false };
    }
    case 'chunked-ok':
      return { kind, bytes: concat(`PUT /v1/kv/fuzz/chunked HTTP/1.1\r\n`, host, 'Transfer-Encoding: chunked\r\n\r\n', '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'), incomplete: false };
    case 'negative-content-length':
      return { kind, bytes: concat(line, host, 'Content-Length: -5\r\n\r\n'), incomplete: false };
    case 'huge-content-length':
      return { kind, bytes: concat(`PUT /v1/kv/fuzz/huge HTTP/1.1\r\n`, host, `Content-Length: ${rng.pick(['99999999999999999999', '5000', '1073741824'])}\r\n\r\n`, 'abc'), incomplete: true };
    case 'short-body':
      return { kind, bytes: concat(`PUT /v1/kv/fuzz/short HTTP/1.1\r\n`, host, 'Content-Length: 100\r\n\r\n', 'only-this'), incomplete: true };
    case 'huge-header':
      return { kind, bytes: concat(line, host, `X-Big: ${'a'.repeat(rng.pick([9000, 20_000, 70_000]))}\r\n\r\n`), incomplete: false };
    case 'many-headers': {
      let headers = '';
      for (let i = 0; i < 3000; i++) headers += `X-H${i}: v\r\n`;
      return { kind, bytes: concat(line, host, headers, '\r\n'), incomplete: false };
    }
    case 'absolute-form':
      return { kind, bytes: concat(`GET http://evil.example${path} HTTP/1.1\r\n`, host, '\r\n'), incomplete: false };
    case 'asterisk-form':
      return { kind, bytes: concat(`OPTIONS * HTTP/1.1\r\n`, host, '\r\n'), incomplete: false };
    case 'connect':
      return { kind, bytes: concat(`CONNECT 127.0.0.1:22 HTTP/1.1\r\n`, host, '\r\n'), incomplete: false };
    case 'no-host':
      return { kind, bytes: concat(line, '\r\n'), incomplete: false };
    case 'bad-host':
      return { kind, bytes: concat(line, `Host: ${rng.pick(['a b', 'evil.example:99999', '[::1', '', 'x/y', '@', '%zz'])}\r\n\r\n`), incomplete: false };
    case 'http-0.9':
      return { kind, bytes: concat(`GET ${path}\r\n\r\n`), incomplete: false };
    case 'random-bytes':
      return { kind, bytes: randomBytes(rng, 1 + rng.int(300)), incomplete: true };
    case 'pipelined':
      return {
        kind,
        bytes: concat(`GET /v1/health HTTP/1.1\r\n`, host, '\r\n', withBody('Content-Type: text/plain\r\n'), `GET ${path} HTTP/1.1\r\n`, host, 'Connection: close\r\n\r\n'),
        incomplete: false,
      };
    case 'lowercase-method':
      return { kind, bytes: concat(`${method.toLowerCase()} ${path} HTTP/1.1\r\n`, host, '\r\n'), incomplete: false };
    case 'long-method':
      return { kind, bytes: concat(`${'X'.repeat(rng.pick([20, 2000]))} ${path} HTTP/1.1\r\n`, host, '\r\n'), incomplete: false };
    case 'backslash-path':
      return { kind, bytes: concat(`GET /v1/kv/a\\..\\b HTTP/1.1\r\n`, host, '\r\n'), incomplete: false };
    case 'valid':
      return { kind, bytes: method === 'PUT' ? withBody('Content-Type: text/plain\r\n') : concat(line, host, '\r\n'), incomplete: false };
    default:
      return kind satisfies never;
  }
}

export function describeRawCase(c: RawCase): string {
  const text = Buffer.from(c.bytes.subarray(0, 200)).toString('latin1');
  return `${c.kind}: ${JSON.stringify(text)}${c.bytes.byteLength > 200 ? `...(${c.bytes.byteLength} bytes)` : ''}`;
}

