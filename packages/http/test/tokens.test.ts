/** The token format and the auth file: what parses, what is refused and why, and what verifies. */
import { describe, expect, it } from 'vitest';
import { AUTH_FILE_LIMITS, AuthFileError, createToken, formatAuthLine, hashToken, parseAuthFile, parseToken } from '../src/tokens.ts';

const HASH = 'a'.repeat(64);

describe('createToken', () => {
  it('makes hs1.<id>.<secret> and the auth line that admits it, keeping only the hash', () => {
    const made = createToken({ scopes: ['read', 'write'], prefixes: ['users/', 'a b,c%'], id: 'billing' });
    expect(made.token).toMatch(/^hs1\.billing\.[A-Za-z0-9_-]{43}$/);
    expect(made.line).toBe(`id=billing scopes=read,write prefixes=users/,a%20b%2Cc%25 sha256=${hashToken(made.token).toString('hex')}`);
    expect(made.line).not.toContain(made.token.split('.')[2]);
    const table = parseAuthFile(`${made.line}\n`);
    expect(table.verify(made.token)).toMatchObject({ id: 'billing', prefixes: ['users/', 'a b,c%'] });
    expect([...table.verify(made.token)!.scopes]).toEqual(['read', 'write']);
  });

  it('picks a random id when none is given, and a fresh secret every time', () => {
    const a = createToken({ scopes: ['read'] });
    const b = createToken({ scopes: ['read'] });
    expect(parseToken(a.token)?.id).toMatch(/^t-[0-9a-f]{8}$/);
    expect(a.token).not.toBe(b.token);
  });

  it.each([
    [{ scopes: [] }, 'at least one scope'],
    [{ scopes: ['root'] }, 'unknown scope "root"'],
    [{ scopes: ['admin'], prefixes: ['a/'] }, 'takes no prefixes'],
    [{ scopes: ['read'], prefixes: [''] }, 'empty prefix'],
    [{ scopes: ['read'], id: 'has space' }, 'must be 1 to 64 characters'],
    [{ scopes: ['read'], id: 'a.b' }, 'must be 1 to 64 characters'],
  ])('refuses %j (%s)', (options, message) => {
    expect(() => createToken(options)).toThrow(message);
  });
});

describe('parseAuthFile', () => {
  it('reads comments, blank lines, fields in any order and CRLF', () => {
    const table = parseAuthFile(`# tokens\r\n\r\nsha256=${HASH} scopes=metrics id=prom   # the scraper\r\nid=ops scopes=admin sha256=${'b'.repeat(64)}\n`);
    expect(table.size).toBe(2);
    expect(table.ids()).toEqual(['prom', 'ops']);
  });

  it('accepts an empty file: no token is valid', () => {
    const table = parseAuthFile('# nobody yet\n');
    expect(table.size).toBe(0);
    expect(table.verify(createToken({ scopes: ['admin'] }).token)).toBeUndefined();
  });

  it.each([
    [`id=a scopes=read`, 1, 'needs id=, scopes= and sha256='],
    [`id=a scopes=read sha256=${HASH} extra`, 1, 'is not name=value'],
    [`id=a scopes=read sha256=${HASH} owner=x`, 1, 'unknown field "owner"'],
    [`id=a scopes=read scopes=write sha256=${HASH}`, 1, 'scopes is given twice'],
    [`id=a scopes=read sha256=${HASH.toUpperCase()}`, 1, '64 lowercase hex digits'],
    [`id=a scopes=read sha256=abc`, 1, '64 lowercase hex digits'],
    [`id=a scopes=read,sudo sha256=${HASH}`, 1, 'unknown scope "sudo"'],
    [`id=a scopes= sha256=${HASH}`, 1, 'at least one scope'],
    [`id=a/b scopes=read sha256=${HASH}`, 1, 'must be 1 to 64 characters'],
    [`id=a scopes=admin prefixes=x/ sha256=${HASH}`, 1, 'takes no prefixes'],
    [`id=a scopes=read prefixes=%E0%A4%A sha256=${HASH}`, 1, 'not valid percent-encoding'],
    [`id=a scopes=read prefixes=x/,,y/ sha256=${HASH}`, 1, 'empty prefix'],
    [`id=a scopes=read sha256=${HASH}\n\nid=a scopes=write sha256=${HASH}`, 3, 'id a is listed twice'],
  ])('refuses %j at line %i: %s', (text, line, message) => {
    let error: unknown;
    try {
      parseAuthFile(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AuthFileError);
    expect((error as AuthFileError).code).toBe('AUTH_FILE_INVALID');
    expect((error as AuthFileError).line).toBe(line);
    expect((error as Error).message).toContain(message);
  });

  it('holds its limits: file size, token count, prefix count and length', () => {
    expect(() => parseAuthFile('#'.repeat(AUTH_FILE_LIMITS.bytesMax + 1))).toThrow('larger than');
    const many = Array.from({ length: AUTH_FILE_LIMITS.tokensMax + 1 }, (_, i) => `id=t${i} scopes=read sha256=${HASH}`).join('\n');
    expect(() => parseAuthFile(many)).toThrow(`more than ${AUTH_FILE_LIMITS.tokensMax} tokens`);
    const prefixes = Array.from({ length: AUTH_FILE_LIMITS.prefixesMax + 1 }, (_, i) => `p${i}/`).join(',');
    expect(() => parseAuthFile(`id=a scopes=read prefixes=${prefixes} sha256=${HASH}`)).toThrow('prefixes');
    expect(() => parseAuthFile(`id=a scopes=read prefixes=${'x'.repeat(1025)} sha256=${HASH}`)).toThrow('longer than 1024 bytes');
  });

  it('formatAuthLine and parseAuthFile agree (a line round-trips)', () => {
    const made = createToken({ scopes: ['write', 'read'], prefixes: ['ü/', '#tag='], id: 'x_1' });
    const entry = parseAuthFile(made.line).verify(made.token)!;
    expect(formatAuthLine({ ...entry, sha256: hashToken(made.token) })).toBe(made.line);
  });
});

describe('TokenTable.verify', () => {
  const made = createToken({ scopes: ['read'], id: 'app' });
  const table = parseAuthFile(made.line);
  const [version, id, secret] = made.token.split('.') as [string, string, string];
  const flipped = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;

  it.each([
    ['the token itself', made.token, true],
    ['another secret for the same id', `${version}.${id}.${flipped}`, false],
    ['an unknown id', `${version}.other.${secret}`, false],
    ['another version', `hs2.${id}.${secret}`, false],
    ['a short secret', `${version}.${id}.${secret.slice(1)}`, false],
    ['no id', `${version}..${secret}`, false],
    ['empty', '', false],
    ['the auth line', made.line, false],
    ['the hash', hashToken(made.token).toString('hex'), false],
  ])('%s: %s', (_what, token, valid) => {
    expect(table.verify(token) !== undefined).toBe(valid);
  });
});
