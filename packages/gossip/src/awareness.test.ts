import { describe, expect, it } from 'vitest';
import { Awareness } from './awareness.ts';

describe('Awareness (memberlist awareness_test)', () => {
  it('follows the table cumulatively', () => {
    const rows: [number, number, number][] = [
      [0, 0, 1000],
      [-1, 0, 1000],
      [-10, 0, 1000],
      [1, 1, 2000],
      [-1, 0, 1000],
      [10, 7, 8000],
      [-1, 6, 7000],
      [-1, 5, 6000],
      [-1, 4, 5000],
      [-1, 3, 4000],
      [-1, 2, 3000],
      [-1, 1, 2000],
      [-1, 0, 1000],
      [-1, 0, 1000],
    ];
    const a = new Awareness(8);
    for (const [delta, score, timeout] of rows) {
      a.applyDelta(delta);
      expect(a.score).toBe(score);
      expect(a.scaleTimeout(1000)).toBe(timeout);
    }
  });

  it('rejects a max below 1', () => {
    expect(() => new Awareness(0)).toThrow(RangeError);
  });
});
