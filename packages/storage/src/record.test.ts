import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Packr, pack, unpack } from 'msgpackr';
import { StorageError } from './errors.ts';
import { bucketOf, hashKey } from './hash.ts';
import { decodeRecord, decodeRecordValue, encodeRecord, encodeRecordValue, validateRecord } from './record.ts';
import type { StoredRecord } from './types.ts';

const base: StoredRecord = {
  key: 'users/42',
  value: new Uint8Array([1, 2, 3]),
  contentType: 'application/json',
  version: { ms: 1_700_000_000_000, counter: 3, node: 'n1' },
  tombstone: false,
  expiresAtMs: 1_800_000_000_000,
};

describe('validateRecord', () => {
  it('accepts a record and returns a clean copy', () => {
    const r = validateRecord({ ...base, extra: 'dropped' });
    expect(r).toEqual(base);
    expect('extra' in r).toBe(false);
    expect(r.value).not.toBe(base.value);
  });

  it('reads null optional fields as absent', () => {
    const { contentType: _c, expiresAtMs: _e, ...bare } = base;
    expect(validateRecord({ ...base, contentType: null, expiresAtMs: null })).toEqual(bare);
  });

  it('accepts a StoredRecord after plain msgpackr pack/unpack', () => {
    expect(validateRecord(unpack(pack(base)))).toEqual(base);
    const t: StoredRecord = { key: 'k', value: new Uint8Array(), version: base.version, tombstone: true };
    expect(validateRecord(unpack(pack(t)))).toEqual(t);
  });

  const bad: [string, unknown][] = [
    ['null', null],
    ['a string', 'record'],
    ['empty key', { ...base, key: '' }],
    ['long key', { ...base, key: 'k'.repeat(1025) }],
    ['value not bytes', { ...base, value: [1, 2] }],
    ['missing version', { ...base, version: undefined }],
    ['negative ms', { ...base, version: { ms: -1, counter: 0, node: 'n' } }],
    ['fractional counter', { ...base, version: { ms: 1, counter: 0.5, node: 'n' } }],
    ['counter too big', { ...base, version: { ms: 1, counter: 2 ** 31, node: 'n' } }],
    ['bad node id', { ...base, version: { ms: 1, counter: 0, node: 'has space' } }],
    ['tombstone not boolean', { ...base, tombstone: 1 }],
    ['tombstone with value', { ...base, tombstone: true, contentType: undefined, expiresAtMs: undefined }],
    ['bad content type', { ...base, contentType: 'x\n' }],
    ['bad expiry', { ...base, expiresAtMs: 1.5 }],
  ];
  for (const [name, x] of bad) {
    it(`rejects ${name} with INVALID_RECORD`, () => {
      let caught: unknown;
      try {
        validateRecord(x);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(StorageError);
      expect((caught as StorageError).code).toBe('INVALID_RECORD');
    });
  }
});

describe('record encodings', () => {
  it('round-trips the wire form', () => {
    const bytes = encodeRecord(base);
    expect(bytes[0]).toBe(1);
    expect(decodeRecord(bytes)).toEqual(base);
    const minimal: StoredRecord = { key: 'é', value: new Uint8Array(), version: { ms: 0, counter: 0, node: 'a' }, tombstone: true };
    expect(decodeRecord(encodeRecord(minimal))).toEqual(minimal);
  });

  it('rejects garbage on the wire', () => {
    for (const b of [new Uint8Array(), new Uint8Array([2, 0x90]), new Uint8Array([1, 0xc1]), new Uint8Array([1, 0x90])]) {
      expect(() => decodeRecord(b)).toThrow(StorageError);
    }
  });

  it('round-trips the disk form, which leaves out the key', () => {
    const bytes = encodeRecordValue(base);
    expect(bytes[0]).toBe(1);
    expect(decodeRecordValue(base.key, bytes)).toEqual(base);
    expect(() => decodeRecordValue('k', Buffer.from([9, 1]))).toThrow(StorageError);
  });

  it('writes the disk form byte for byte as msgpackr packs the field array', () => {
    // encodeRecordValue is hand-written for speed; the format is "0x01 then what msgpackr packs".
    const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
    const reference = (r: StoredRecord): Buffer => Buffer.concat([
      Buffer.of(1),
      packr.pack([r.version.ms, r.version.counter, r.version.node, r.tombstone, r.value, r.contentType ?? null, r.expiresAtMs ?? null]),
    ]);
    const numbers = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 31 - 1, 0xffffffff, 2 ** 32, 1_700_000_000_123, Number.MAX_SAFE_INTEGER];
    const strings = (c: string): string[] => [1, 0x1f, 0x20, 0xff, 0x100].map((n) => c.repeat(n));
    const lengths = [0, 1, 0xff, 0x100, 0xffff, 0x10000];
    let checked = 0;
    const check = (r: StoredRecord): void => {
      // Buffer.equals, not toEqual: vitest's deep equality walks 64 KiB values byte by byte, slowly enough to time out.
      const encoded = encodeRecordValue(r);
      const expected = reference(r);
      if (!encoded.equals(expected)) expect(encoded.toString('hex')).toBe(expected.toString('hex'));
      const decoded = decodeRecordValue(r.key, encoded);
      expect(Buffer.from(decoded.value).equals(Buffer.from(r.value))).toBe(true);
      expect({ ...decoded, value: null }).toEqual({ ...r, value: null });
      checked++;
    };
    for (const ms of numbers) {
      for (const counter of numbers.filter((n) => n <= 2 ** 31 - 1)) {
        check({ key: 'k', value: new Uint8Array([1, 2]), version: { ms, counter, node: 'n-1' }, tombstone: false, expiresAtMs: ms });
      }
    }
    for (const node of strings('n').filter((x) => x.length <= 128)) {
      for (const contentType of [undefined, ...strings('t')]) {
        for (const n of lengths) {
          const value = new Uint8Array(n).map((_, i) => i);
          const live: StoredRecord = { key: 'k', value, version: { ms: 5, counter: 0, node }, tombstone: false };
          check(contentType === undefined ? live : { ...live, contentType });
        }
      }
      check({ key: 'k', value: new Uint8Array(), version: { ms: 5, counter: 7, node }, tombstone: true });
    }
    expect(checked).toBeGreaterThan(200);
  });
});

describe('hashKey / bucketOf', () => {
  it('is SHA-256 of the UTF-8 key, first 8 bytes big-endian', () => {
    // sha256("") = e3b0c44298fc1c14...; sha256("abc") = ba7816bf8f01cfea...
    expect(hashKey('abc')).toBe(0xba7816bf8f01cfean);
    expect(hashKey('é')).toBe(createHash('sha256').update('é', 'utf8').digest().readBigUInt64BE(0));
  });

  it('takes the top bits, so buckets are contiguous in hash order', () => {
    const h = 0xba7816bf8f01cfean;
    expect(bucketOf(h, 0)).toBe(0);
    expect(bucketOf(h, 4)).toBe(0xb);
    expect(bucketOf(h, 16)).toBe(0xba78);
    expect(bucketOf(0xffffffffffffffffn, 20)).toBe(2 ** 20 - 1);
    // partition p of 2^P covers buckets [p << (B-P), (p+1) << (B-P))
    const p = bucketOf(h, 8);
    const b = bucketOf(h, 16);
    expect(b >= p << 8 && b < (p + 1) << 8).toBe(true);
  });
});

