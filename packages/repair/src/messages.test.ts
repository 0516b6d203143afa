import { describe, expect, it } from 'vitest';
import { fromGaps, toGaps } from './messages.ts';
import { RepairError } from './errors.ts';

describe('gap encoding', () => {
  const cases: [number[], number[]][] = [
    [[], []],
    [[0], [0]],
    [[5], [5]],
    [[0, 1, 2], [0, 1, 1]],
    [[3, 10, 200], [3, 7, 190]],
  ];
  it.each(cases)('%j <-> %j', (values, gaps) => {
    expect(toGaps(values)).toEqual(gaps);
    expect(fromGaps(gaps, 1000, 'x')).toEqual(values);
  });
  it.each([[[1, 0]], [[-1]], [[0.5]], [[999, 1]]])('rejects %j', (gaps) => {
    expect(() => fromGaps(gaps, 1000, 'x')).toThrow(RepairError);
  });
});
