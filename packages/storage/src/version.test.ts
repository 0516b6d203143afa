import { describe, expect, it } from 'vitest';
import { StorageError } from './errors.ts';
import { COUNTER_MAX, compareVersions, parseVersion, versionAfter, versionToString } from './version.ts';

describe('compareVersions', () => {
  const cases: [string, [number, number, string], [number, number, string], -1 | 0 | 1][] = [
    ['equal', [5, 1, 'a'], [5, 1, 'a'], 0],
    ['ms decides first', [4, 9, 'z'], [5, 0, 'a'], -1],
    ['then counter', [5, 2, 'a'], [5, 1, 'z'], 1],
    ['then node id bytes', [5, 1, 'a'], [5, 1, 'b'], -1],
    ['a prefix node id sorts first', [5, 1, 'node'], [5, 1, 'node-2'], -1],
    ['upper case sorts before lower', [5, 1, 'Z'], [5, 1, 'a'], -1],
  ];
  for (const [name, [am, ac, an], [bm, bc, bn], want] of cases) {
    it(name, () => {
      const a = { ms: am, counter: ac, node: an };
      const b = { ms: bm, counter: bc, node: bn };
      expect(compareVersions(a, b)).toBe(want);
      expect(compareVersions(b, a)).toBe(want === 0 ? 0 : -want);
    });
  }
});

describe('versionToString / parseVersion', () => {
  it('round-trips', () => {
    for (const v of [
      { ms: 0, counter: 0, node: 'a' },
      { ms: 1_700_000_000_123, counter: 2 ** 31 - 1, node: 'node-1.example:7946' },
      { ms: Number.MAX_SAFE_INTEGER, counter: 5, node: 'x'.repeat(128) },
    ]) {
      const s = versionToString(v);
      expect(s).toMatch(/^[A-Za-z0-9._:-]+$/);
      expect(parseVersion(s)).toEqual(v);
    }
  });

  const garbage = ['', '1.2', '1.2.', '01.2.n', '1.02.n', '-1.2.n', '1.2.n n', '1.2.n"', '1.2147483648.n', '9007199254740992.0.n',
    `1.2.${'x'.repeat(129)}`, 'abc', '1.2.n\n', '1e3.0.n'];
  for (const s of garbage) {
    it(`rejects ${JSON.stringify(s.slice(0, 40))}`, () => {
      expect(() => parseVersion(s)).toThrow(StorageError);
      try {
        parseVersion(s);
      } catch (e) {
        expect((e as StorageError).code).toBe('INVALID_VERSION');
      }
    });
  }
  it('rejects a non-string', () => {
    expect(() => parseVersion(42 as unknown as string)).toThrow(StorageError);
  });
});

describe('versionAfter', () => {
  it('is the smallest version of the node above the given one', () => {
    expect(versionAfter({ ms: 7, counter: 2, node: 'zz' }, 'a')).toEqual({ ms: 7, counter: 3, node: 'a' });
    expect(versionAfter({ ms: 7, counter: COUNTER_MAX, node: 'zz' }, 'a')).toEqual({ ms: 8, counter: 0, node: 'a' });
    expect(compareVersions(versionAfter({ ms: 7, counter: 2, node: 'zz' }, 'a'), { ms: 7, counter: 2, node: 'zz' })).toBe(1);
  });
});
