import { describe, expect, it } from 'vitest';
import { CURSOR_MAX_CHARS, decodeCursor, encodeCursor } from './cursor.ts';
import { isStorageError } from './errors.ts';

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return isStorageError(e) ? e.code : 'not a StorageError';
  }
};

describe('listing cursors', () => {
  it.each(['a', 'users/1', 'café', '日本', '🙂', 'k', '\u0000', 'x'.repeat(1024), 'é'.repeat(512)])('round-trips %j', (key) => {
    const cursor = encodeCursor(key);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor.length).toBeLessThanOrEqual(CURSOR_MAX_CHARS);
    expect(decodeCursor(cursor)).toBe(key);
  });

  it('is base64url of the tag byte k and the key, so cluster cursors made before the codec was shared still read', () => {
    expect(encodeCursor('users/1')).toBe(Buffer.from('kusers/1', 'utf8').toString('base64url'));
  });

  it.each([
    ['not a string', 42],
    ['null', null],
    ['empty', ''],
    ['not base64url', '!!'],
    ['padded', `${encodeCursor('ab')}=`],
    ['non-canonical base64url (stray low bits)', 'a2F'],
    ['no tag', Buffer.from('users/1').toString('base64url')],
    ['the tag alone', Buffer.from('k').toString('base64url')],
    ['invalid UTF-8 after the tag', Buffer.from([0x6b, 0xff, 0xfe]).toString('base64url')],
    ['a lone surrogate encoded as UTF-8', Buffer.from([0x6b, 0xed, 0xa0, 0x80]).toString('base64url')],
    ['longer than any key allows', encodeCursor('x'.repeat(1025))],
    ['made-up text', 'not-a-cursor'],
  ])('refuses %s with INVALID_CURSOR', (_name, cursor) => {
    expect(codeOf(() => decodeCursor(cursor))).toBe('INVALID_CURSOR');
  });
});
