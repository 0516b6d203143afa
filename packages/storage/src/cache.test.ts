import { describe, expect, it } from 'vitest';
import { RecordCache } from './cache.ts';
import type { StoredRecord } from './types.ts';

const rec = (key: string, bytes: number): StoredRecord => ({ key, value: new Uint8Array(bytes), version: { ms: 1, counter: 0, node: 'n' }, tombstone: false });

describe('RecordCache', () => {
  it('remembers records and known-absent keys', () => {
    const c = new RecordCache(1 << 20);
    expect(c.get('a')).toBeUndefined();
    c.set('a', rec('a', 3));
    c.set('b', null);
    expect(c.get('a')?.key).toBe('a');
    expect(c.get('b')).toBeNull();
    c.delete('a');
    expect(c.get('a')).toBeUndefined();
  });

  it('stays within its budget and keeps recently used entries', () => {
    const c = new RecordCache(100 * 200);
    c.set('hot', rec('hot', 10));
    for (let i = 0; i < 10_000; i++) {
      c.set(`k${i}`, rec(`k${i}`, 10));
      if (i % 20 === 0) expect(c.get('hot')).toBeDefined();
    }
    expect(c.size).toBeLessThanOrEqual(200);
    expect(c.get('hot')).toBeDefined();
    expect(c.get('k0')).toBeUndefined();
  });

  it('skips entries larger than a sixteenth of the budget, and caches nothing at size 0', () => {
    const c = new RecordCache(16_000);
    c.set('big', rec('big', 2000));
    expect(c.get('big')).toBeUndefined();
    const off = new RecordCache(0);
    off.set('a', rec('a', 1));
    expect(off.get('a')).toBeUndefined();
  });
});
