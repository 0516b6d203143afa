import { describe, expect, it } from 'vitest';
import { percentDecode } from './percent.ts';
import { keyFromUrl, parseQuery } from './request-target.ts';

describe('percentDecode', () => {
  const cases: [string, boolean, ReturnType<typeof percentDecode>][] = [
    ['abc', false, { ok: true, value: 'abc', bytes: 3 }],
    ['a%2Fb', false, { ok: true, value: 'a/b', bytes: 3 }],
    ['a%2fb', false, { ok: true, value: 'a/b', bytes: 3 }],
    ['%E2%82%AC', false, { ok: true, value: '€', bytes: 3 }],
    ['€', false, { ok: true, value: '€', bytes: 3 }],
    ['a+b', false, { ok: true, value: 'a+b', bytes: 3 }],
    ['a+b', true, { ok: true, value: 'a b', bytes: 3 }],
    ['%2B', true, { ok: true, value: '+', bytes: 1 }],
    ['%00', false, { ok: true, value: '\u0000', bytes: 1 }],
    ['%', false, { ok: false, code: 'INVALID_PERCENT_ENCODING' }],
    ['a%2', false, { ok: false, code: 'INVALID_PERCENT_ENCODING' }],
    ['%zz', false, { ok: false, code: 'INVALID_PERCENT_ENCODING' }],
    ['%G0', false, { ok: false, code: 'INVALID_PERCENT_ENCODING' }],
    ['%FF', false, { ok: false, code: 'INVALID_UTF8' }],
    ['%C3', false, { ok: false, code: 'INVALID_UTF8' }],
    ['%ED%A0%80', false, { ok: false, code: 'INVALID_UTF8' }], // an encoded surrogate
    ['%C0%AF', false, { ok: false, code: 'INVALID_UTF8' }], // overlong "/"
    ['\uD800', false, { ok: false, code: 'INVALID_UTF8' }],
    ['%41\uDC00', false, { ok: false, code: 'INVALID_UTF8' }],
    ['%EF%BB%BFx', false, { ok: true, value: '\uFEFFx', bytes: 4 }], // a BOM is kept
  ];
  it.each(cases)('%j (plus is space: %s)', (raw, plus, expected) => {
    expect(percentDecode(raw, plus)).toEqual(expected);
  });
});

describe('keyFromUrl', () => {
  const base = 'http://localhost/v1/kv/';
  it.each([
    [`${base}a`, 'a'],
    [`${base}a/b/c`, 'a/b/c'],
    [`${base}a%2Fb`, 'a/b'],
    [`${base}a?consistency=one`, 'a'],
    [`${base}a#frag`, 'a'],
    [`${base}caf%C3%A9`, 'café'],
    [`${base}%20`, ' '],
    ['/v1/kv/x', 'x'],
    ['http://localhost/v1/k%76/x', 'x'], // routed by Hono's decoded path; the key is the third segment on
  ])('%s -> %j', (url, key) => {
    expect(keyFromUrl(url, 1024)).toEqual({ ok: true, key });
  });

  it.each([
    [`${base}`, 'KEY_EMPTY'],
    [`${base}?a=b`, 'KEY_EMPTY'],
    ['http://localhost/v1/kv', 'KEY_EMPTY'],
    [`${base}%`, 'INVALID_PERCENT_ENCODING'],
    [`${base}%C3%28`, 'INVALID_UTF8'],
  ])('%s -> %s', (url, code) => {
    const result = keyFromUrl(url, 1024);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.code).toBe(code);
  });

  it('counts the limit in UTF-8 bytes of the decoded key', () => {
    expect(keyFromUrl(base + 'a'.repeat(1024), 1024)).toEqual({ ok: true, key: 'a'.repeat(1024) });
    expect(keyFromUrl(base + 'a'.repeat(1025), 1024)).toMatchObject({ ok: false, code: 'KEY_TOO_LONG' });
    // 342 x "€" is 1026 bytes, 341 is 1023.
    expect(keyFromUrl(base + '%E2%82%AC'.repeat(341), 1024)).toMatchObject({ ok: true });
    expect(keyFromUrl(base + '%E2%82%AC'.repeat(342), 1024)).toMatchObject({ ok: false, code: 'KEY_TOO_LONG' });
    expect(keyFromUrl(base + 'a'.repeat(5000), 1024)).toMatchObject({ ok: false, code: 'KEY_TOO_LONG' });
  });
});

describe('parseQuery', () => {
  const allowed = new Set(['prefix', 'limit']);
  it('reads allowed parameters strictly', () => {
    const result = parseQuery('http://h/v1/kv?prefix=a%2Fb+c&limit=5&', allowed);
    expect(result.ok && [...result.params]).toEqual([
      ['prefix', 'a/b c'],
      ['limit', '5'],
    ]);
    expect(parseQuery('http://h/v1/kv', allowed)).toMatchObject({ ok: true });
    expect(parseQuery('http://h/v1/kv?', allowed)).toMatchObject({ ok: true });
    expect(parseQuery('http://h/v1/kv?prefix', allowed)).toMatchObject({ ok: true });
  });

  it.each([
    ['?other=1', 'UNKNOWN_PARAMETER'],
    ['?prefix=a&prefix=b', 'INVALID_PARAMETER'],
    ['?prefix=%zz', 'INVALID_PERCENT_ENCODING'],
    ['?prefix=%FF', 'INVALID_UTF8'],
    ['?%zz=1', 'INVALID_PERCENT_ENCODING'],
  ])('%s -> %s', (query, code) => {
    expect(parseQuery(`http://h/v1/kv${query}`, allowed)).toMatchObject({ ok: false, code });
  });
});
