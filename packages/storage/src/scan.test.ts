import { describe, expect, it } from 'vitest';
import { encodeCursor } from './cursor.ts';
import { isStorageError } from './errors.ts';
import { scanRange, type ScanBounds } from './scan.ts';

const none: ScanBounds = { prefix: undefined, gte: undefined, lt: undefined, cursor: undefined };
/** A range as text: data keys without their 'd' byte, hex for bytes outside printable ASCII. */
const show = (r: { gte: Buffer; lt: Buffer } | null): string | null => {
  if (r === null) return null;
  const text = (b: Buffer): string => (b.length === 0 ? '' : [...b].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `<${c.toString(16)}>`)).join(''));
  return `${text(r.gte)}..${text(r.lt)}`;
};

describe('scanRange', () => {
  it.each([
    ['no bounds: the whole data keyspace', {}, 'd..e'],
    ['a prefix: from it to prefix ‖ 0xff', { prefix: 'ab' }, 'dab..dab<ff>'],
    ['gte and lt', { gte: 'b', lt: 'm' }, 'db..dm'],
    ['the tightest of prefix and gte', { prefix: 'ab', gte: 'abc' }, 'dabc..dab<ff>'],
    ['the tightest of prefix and lt', { prefix: 'ab', lt: 'abc' }, 'dab..dabc'],
    ['a cursor: just above its key', { cursor: encodeCursor('k1') }, 'dk1<0>..e'],
    ['a cursor below gte does not lower it', { gte: 'z', cursor: encodeCursor('a') }, 'dz..e'],
    ['an empty range', { gte: 'm', lt: 'b' }, null],
    ['a cursor past lt', { lt: 'b', cursor: encodeCursor('c') }, null],
  ] as [string, Partial<ScanBounds>, string | null][])('%s', (_name, bounds, expected) => {
    expect(show(scanRange({ ...none, ...bounds }))).toBe(expected);
  });

  it('refuses a cursor it cannot read with INVALID_CURSOR, even for an empty range', () => {
    for (const cursor of ['!!', 'x', Buffer.from('no tag').toString('base64url')]) {
      let error: unknown;
      try {
        scanRange({ ...none, gte: 'm', lt: 'b', cursor });
      } catch (e) {
        error = e;
      }
      expect(isStorageError(error, 'INVALID_CURSOR'), cursor).toBe(true);
    }
  });
});
