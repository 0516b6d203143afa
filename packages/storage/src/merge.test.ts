import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareEntries, compareRecords, isDead, isLive, newer, newest, supersedes } from './merge.ts';
import type { StoredRecord } from './types.ts';

/** fast-check seed: LWW_SEED replays a run; printed so a failure in CI can be replayed. */
const seed = Number(process.env['LWW_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
console.log(`merge.test.ts: fast-check seed ${seed} (replay with LWW_SEED=${seed})`);

const v = (ms: number, counter = 0, node = 'n1') => ({ ms, counter, node });
const live = (ms: number, extra: Partial<StoredRecord> = {}): StoredRecord =>
  ({ key: 'k', value: new Uint8Array([1]), version: v(ms), tombstone: false, ...extra });
const dead = (ms: number, extra: Partial<StoredRecord> = {}): StoredRecord =>
  ({ key: 'k', value: new Uint8Array(), version: v(ms), tombstone: true, ...extra });

describe('compareRecords: the LWW order', () => {
  const cases: [string, StoredRecord, StoredRecord, -1 | 0 | 1][] = [
    ['higher ms wins', live(2), live(1), 1],
    ['higher counter wins within a ms', live(1, { version: v(1, 1) }), live(1, { version: v(1, 0) }), 1],
    ['higher node id breaks a (ms, counter) tie', live(1, { version: v(1, 0, 'n2') }), live(1, { version: v(1, 0, 'n1') }), 1],
    ['an older tombstone loses to a newer value', dead(1), live(2), -1],
    ['a newer tombstone beats an older value', dead(2), live(1), 1],
    ['equal versions: tombstone over live', dead(1), live(1), 1],
    ['equal versions: no expiry over an expiry', live(1), live(1, { expiresAtMs: 10 }), 1],
    ['equal versions: later expiry over earlier', live(1, { expiresAtMs: 20 }), live(1, { expiresAtMs: 10 }), 1],
    ['equal versions: content type order', live(1, { contentType: 'b/b' }), live(1, { contentType: 'a/a' }), 1],
    ['equal versions: a content type over none', live(1, { contentType: 'a/a' }), live(1), 1],
    ['equal versions: value bytes order', live(1, { value: new Uint8Array([2]) }), live(1, { value: new Uint8Array([1]) }), 1],
    ['equal versions: a longer value over its prefix', live(1, { value: new Uint8Array([1, 0]) }), live(1), 1],
    ['equal contents compare equal', live(1, { contentType: 'a/a', expiresAtMs: 5 }), live(1, { contentType: 'a/a', expiresAtMs: 5 }), 0],
  ];
  it.each(cases)('%s', (_name, a, b, expected) => {
    expect(compareRecords(a, b)).toBe(expected);
    expect(compareRecords(b, a)).toBe(-expected || 0);
  });
});

describe('compareEntries: the order on what an index entry holds', () => {
  it.each([
    ['version first', { version: v(2), tombstone: false }, { version: v(1), tombstone: true }, 1],
    ['tombstone over live at one version', { version: v(1), tombstone: true }, { version: v(1), tombstone: false }, 1],
    ['equal', { version: v(1), tombstone: false }, { version: v(1), tombstone: false }, 0],
  ] as const)('%s', (_name, a, b, expected) => {
    expect(compareEntries(a, b)).toBe(expected);
    expect(compareEntries(b, a)).toBe(-expected || 0);
  });
});

describe('supersedes, newer, newest, isDead, isLive', () => {
  it('a record supersedes nothing stored, and only a strictly lower record', () => {
    expect(supersedes(live(1), null)).toBe(true);
    expect(supersedes(live(1), undefined)).toBe(true);
    expect(supersedes(live(2), live(1))).toBe(true);
    expect(supersedes(live(1), live(1))).toBe(false);
    expect(supersedes(live(1), dead(1))).toBe(false);
    expect(supersedes(dead(1), live(1))).toBe(true);
  });

  it('newer keeps a present record over an absent one, and the first of two equal ones', () => {
    const a = live(1);
    const b = live(1);
    expect(newer(undefined, undefined)).toBeUndefined();
    expect(newer(a, undefined)).toBe(a);
    expect(newer(undefined, a)).toBe(a);
    expect(newer(a, b)).toBe(a);
    expect(newer(b, a)).toBe(b);
    expect(newest([undefined, dead(1), undefined, live(1)])?.tombstone).toBe(true);
    expect(newest([])).toBeUndefined();
  });

  it.each([
    ['a live record without expiry', live(1), 100, false],
    ['a tombstone', dead(1), 100, true],
    ['a record before its expiry', live(1, { expiresAtMs: 101 }), 100, false],
    ['a record at its expiry', live(1, { expiresAtMs: 100 }), 100, true],
  ] as const)('isDead of %s', (_name, r, nowMs, expected) => {
    expect(isDead(r, nowMs)).toBe(expected);
    expect(isLive(r, nowMs)).toBe(!expected);
  });

  it('isLive of an absent record is false', () => {
    expect(isLive(undefined, 0)).toBe(false);
  });
});

/** Records of one key over small domains, so equal versions with different contents are common. */
const recordArb: fc.Arbitrary<StoredRecord> = fc.record({
  ms: fc.integer({ min: 0, max: 2 }),
  counter: fc.integer({ min: 0, max: 1 }),
  node: fc.constantFrom('n1', 'n2'),
  tombstone: fc.boolean(),
  value: fc.uint8Array({ max: 1, maxLength: 2 }),
  contentType: fc.constantFrom(undefined, 'a/a', 'b/b'),
  expiresAtMs: fc.constantFrom(undefined, 1, 2),
}).map(({ ms, counter, node, tombstone, value, contentType, expiresAtMs }): StoredRecord => {
  const r: { -readonly [K in keyof StoredRecord]: StoredRecord[K] } = {
    key: 'k', value: tombstone ? new Uint8Array() : value, version: { ms, counter, node }, tombstone,
  };
  if (!tombstone && contentType !== undefined) r.contentType = contentType;
  if (!tombstone && expiresAtMs !== undefined) r.expiresAtMs = expiresAtMs;
  return r;
});

const same = (a: StoredRecord | undefined, b: StoredRecord | undefined): boolean =>
  (a === undefined) === (b === undefined) && (a === undefined || compareRecords(a, b as StoredRecord) === 0);

describe('LWW laws (fast-check)', () => {
  it('compareRecords is a total order: antisymmetric, transitive, 0 only for equal contents', () => {
    fc.assert(fc.property(recordArb, recordArb, recordArb, (a, b, c) => {
      expect(compareRecords(a, b)).toBe(-compareRecords(b, a) || 0);
      if (compareRecords(a, b) >= 0 && compareRecords(b, c) >= 0) expect(compareRecords(a, c)).toBeGreaterThanOrEqual(0);
      if (compareRecords(a, b) === 0) expect({ ...a, value: [...a.value] }).toEqual({ ...b, value: [...b.value] });
    }), { seed, numRuns: 2000 });
  });

  it('compareEntries never contradicts compareRecords', () => {
    fc.assert(fc.property(recordArb, recordArb, (a, b) => {
      const e = compareEntries(a, b);
      if (e !== 0) expect(compareRecords(a, b)).toBe(e);
    }), { seed, numRuns: 2000 });
  });

  it('newest is the maximum, whatever the order and grouping, and idempotent', () => {
    fc.assert(fc.property(fc.array(fc.option(recordArb, { nil: undefined }), { maxLength: 8 }), fc.nat(), (records, cut) => {
      const best = newest(records);
      for (const r of records) if (r !== undefined) expect(compareRecords(best as StoredRecord, r)).toBeGreaterThanOrEqual(0);
      expect(same(newest([...records].reverse()), best)).toBe(true);
      const i = records.length === 0 ? 0 : cut % records.length;
      expect(same(newer(newest(records.slice(0, i)), newest(records.slice(i))), best)).toBe(true);
      expect(same(newest([...records, ...records]), best)).toBe(true);
      for (const r of records) if (r !== undefined) expect(supersedes(r, best)).toBe(false);
    }), { seed, numRuns: 1000 });
  });
});
