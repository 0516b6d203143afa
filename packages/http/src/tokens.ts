/**
 * Client tokens and the auth file that lists them (`hearsay start
 * --auth-file`). A token is `hs1.<id>.<secret>`: the id names it in logs and
 * in the file (like Consul's AccessorID), the secret is 32 random bytes in
 * base64url. The file keeps only the SHA-256 of the whole token, so reading
 * the file does not give a usable token; the secret is shown once, when the
 * token is made.
 *
 * One token a line, fields `name=value` in any order, `#` starts a comment:
 *
 *   id=billing scopes=read,write prefixes=users/,orders/ sha256=<64 hex digits>
 *
 * `prefixes` (optional) limits the token's key routes to keys that start with
 * one of them; each prefix is percent-encoded (`%2C` for a comma, `%20` for a
 * space). `admin` takes no prefixes: it is every route on every key.
 *
 * This module is pure (no file system): the CLI reads the file and hands the
 * text to `parseAuthFile`, and swaps the table on reload.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Append only: tokens name them in files. */
export const SCOPES = ['read', 'write', 'admin', 'metrics'] as const;
export type Scope = (typeof SCOPES)[number];

export const TOKEN_VERSION = 'hs1';
/** Random bytes in a token's secret. */
export const TOKEN_SECRET_BYTES = 32;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** Bounds of an auth file; more is refused as a whole (the previous table stays in force). */
export const AUTH_FILE_LIMITS = {
  bytesMax: 1024 * 1024,
  tokensMax: 10_000,
  prefixesMax: 64,
  /** UTF-8 bytes of one prefix, as of a key. */
  prefixBytesMax: 1024,
} as const;

/** Who a request comes from, once its token is known. */
export interface Principal {
  readonly id: string;
  readonly scopes: ReadonlySet<Scope>;
  /** Key prefixes the key routes are limited to; undefined: every key. */
  readonly prefixes: readonly string[] | undefined;
}

export interface TokenEntry extends Principal {
  /** SHA-256 of the whole token text. */
  readonly sha256: Buffer;
}

export class AuthFileError extends Error {
  override readonly name = 'AuthFileError';
  readonly code = 'AUTH_FILE_INVALID';
  /** 1-based line of the problem, when there is one. */
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.line = line;
  }
}

export function hashToken(token: string): Buffer {
  // The one-shot hash: about 1 µs, against about 5 µs for a createHash object, on every request.
  return hash('sha256', token, 'buffer');
}

/** `hs1.<id>.<secret>` split, or undefined when the text is not a token of this form. */
export function parseToken(token: string): { readonly id: string; readonly secret: string } | undefined {
  const first = token.indexOf('.');
  const last = token.lastIndexOf('.');
  if (first === -1 || first === last || token.slice(0, first) !== TOKEN_VERSION) return undefined;
  const id = token.slice(first + 1, last);
  const secret = token.slice(last + 1);
  return ID_PATTERN.test(id) && SECRET_PATTERN.test(secret) ? { id, secret } : undefined;
}

export function isValidTokenId(id: string): boolean {
  return ID_PATTERN.test(id);
}

export interface NewToken {
  /** The token a client sends; shown once. */
  readonly token: string;
  /** The auth file line that admits it. */
  readonly line: string;
  readonly entry: TokenEntry;
}

/**
 * A fresh token: `id` defaults to `t-` and 8 random hex digits. Throws
 * `AuthFileError` for a bad id, an unknown scope, no scope, or prefixes on an
 * admin token.
 */
export function createToken(options: { readonly scopes: readonly string[]; readonly prefixes?: readonly string[]; readonly id?: string }): NewToken {
  const id = options.id ?? `t-${randomBytes(4).toString('hex')}`;
  if (!ID_PATTERN.test(id)) throw new AuthFileError(`token id ${JSON.stringify(id.slice(0, 80))} must be 1 to 64 characters of A-Z a-z 0-9 _ -`);
  const scopes = scopesOf(options.scopes.join(','), undefined);
  const prefixes = options.prefixes === undefined || options.prefixes.length === 0 ? undefined : checkPrefixes(options.prefixes, scopes, undefined);
  const token = `${TOKEN_VERSION}.${id}.${randomBytes(TOKEN_SECRET_BYTES).toString('base64url')}`;
  const entry: TokenEntry = { id, scopes, prefixes, sha256: hashToken(token) };
  return { token, line: formatAuthLine(entry), entry };
}

/** The auth file line of an entry. */
export function formatAuthLine(entry: TokenEntry): string {
  const scopes = SCOPES.filter((s) => entry.scopes.has(s)).join(',');
  const prefixes = entry.prefixes === undefined ? '' : ` prefixes=${entry.prefixes.map(encodePrefix).join(',')}`;
  return `id=${entry.id} scopes=${scopes}${prefixes} sha256=${entry.sha256.toString('hex')}`;
}

/** Percent-encodes what would break the line format (space, comma, `%`, `#`, `=`, controls, non-ASCII); `/` stays. */
function encodePrefix(prefix: string): string {
  return encodeURIComponent(prefix).replace(/%2F/g, '/');
}

/** Parses an auth file. Throws `AuthFileError` naming the first bad line. */
export function parseAuthFile(text: string): TokenTable {
  if (Buffer.byteLength(text, 'utf8') > AUTH_FILE_LIMITS.bytesMax) {
    throw new AuthFileError(`the auth file is larger than ${AUTH_FILE_LIMITS.bytesMax} bytes`);
  }
  const entries = new Map<string, TokenEntry>();
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const lineNo = index + 1;
    const hash = raw.indexOf('#');
    const line = (hash === -1 ? raw : raw.slice(0, hash)).trim();
    if (line === '') continue;
    const fields = new Map<string, string>();
    for (const field of line.split(/[ \t]+/)) {
      const eq = field.indexOf('=');
      if (eq <= 0) throw new AuthFileError(`${JSON.stringify(field.slice(0, 40))} is not name=value`, lineNo);
      const name = field.slice(0, eq);
      if (!['id', 'scopes', 'prefixes', 'sha256'].includes(name)) throw new AuthFileError(`unknown field ${JSON.stringify(name.slice(0, 40))} (id, scopes, prefixes, sha256)`, lineNo);
      if (fields.has(name)) throw new AuthFileError(`${name} is given twice`, lineNo);
      fields.set(name, field.slice(eq + 1));
    }
    const id = fields.get('id');
    const scopesText = fields.get('scopes');
    const sha256 = fields.get('sha256');
    if (id === undefined || scopesText === undefined || sha256 === undefined) throw new AuthFileError('a token line needs id=, scopes= and sha256=', lineNo);
    if (!ID_PATTERN.test(id)) throw new AuthFileError(`id ${JSON.stringify(id.slice(0, 80))} must be 1 to 64 characters of A-Z a-z 0-9 _ -`, lineNo);
    if (entries.has(id)) throw new AuthFileError(`id ${id} is listed twice`, lineNo);
    if (!HEX64.test(sha256)) throw new AuthFileError('sha256= must be 64 lowercase hex digits (the SHA-256 of the token)', lineNo);
    const scopes = scopesOf(scopesText, lineNo);
    const prefixesText = fields.get('prefixes');
    const prefixes = prefixesText === undefined ? undefined : checkPrefixes(decodePrefixes(prefixesText, lineNo), scopes, lineNo);
    entries.set(id, { id, scopes, prefixes, sha256: Buffer.from(sha256, 'hex') });
    if (entries.size > AUTH_FILE_LIMITS.tokensMax) throw new AuthFileError(`more than ${AUTH_FILE_LIMITS.tokensMax} tokens`, lineNo);
  }
  return new TokenTable(entries);
}

function scopesOf(text: string, line: number | undefined): ReadonlySet<Scope> {
  const scopes = new Set<Scope>();
  for (const name of text.split(',')) {
    const scope = name.trim();
    if (scope === '') continue;
    if (!(SCOPES as readonly string[]).includes(scope)) throw new AuthFileError(`unknown scope ${JSON.stringify(scope.slice(0, 40))} (${SCOPES.join(', ')})`, line);
    scopes.add(scope as Scope);
  }
  if (scopes.size === 0) throw new AuthFileError(`a token needs at least one scope (${SCOPES.join(', ')})`, line);
  return scopes;
}

function decodePrefixes(text: string, line: number): string[] {
  return text.split(',').map((encoded) => {
    try {
      return decodeURIComponent(encoded);
    } catch {
      throw new AuthFileError(`prefix ${JSON.stringify(encoded.slice(0, 80))} is not valid percent-encoding`, line);
    }
  });
}

function checkPrefixes(prefixes: readonly string[], scopes: ReadonlySet<Scope>, line: number | undefined): readonly string[] {
  if (scopes.has('admin')) throw new AuthFileError('an admin token covers every key: it takes no prefixes', line);
  if (prefixes.length > AUTH_FILE_LIMITS.prefixesMax) throw new AuthFileError(`more than ${AUTH_FILE_LIMITS.prefixesMax} prefixes`, line);
  for (const prefix of prefixes) {
    if (prefix === '') throw new AuthFileError('an empty prefix (it would cover every key: leave prefixes out instead)', line);
    if (Buffer.byteLength(prefix, 'utf8') > AUTH_FILE_LIMITS.prefixBytesMax) throw new AuthFileError(`a prefix longer than ${AUTH_FILE_LIMITS.prefixBytesMax} bytes`, line);
  }
  return [...prefixes];
}

const UNKNOWN_ID_HASH = Buffer.alloc(32);

/** The tokens of one auth file; immutable (a reload builds a new table). */
export class TokenTable {
  readonly #entries: ReadonlyMap<string, TokenEntry>;

  constructor(entries: ReadonlyMap<string, TokenEntry>) {
    this.#entries = entries;
  }

  get size(): number {
    return this.#entries.size;
  }

  ids(): string[] {
    return [...this.#entries.keys()];
  }

  /** What token `id` may do (no secret), for listings. */
  principal(id: string): Principal | undefined {
    const entry = this.#entries.get(id);
    return entry === undefined ? undefined : { id: entry.id, scopes: entry.scopes, prefixes: entry.prefixes };
  }

  /** The principal of a token, or undefined when it is not one of this table's (malformed, unknown id, wrong secret). */
  verify(token: string): Principal | undefined {
    const parsed = parseToken(token);
    if (parsed === undefined) return undefined;
    const entry = this.#entries.get(parsed.id);
    // Hashed and compared whether the id is known or not, so the time taken does not say which ids exist.
    const matches = timingSafeEqual(hashToken(token), entry?.sha256 ?? UNKNOWN_ID_HASH);
    return matches && entry !== undefined ? entry : undefined;
  }
}
