import { describe, expect, it } from 'vitest';
import { bucketRuns } from './bucket-entries.ts';

describe('bucketRuns', () => {
  it.each([
    ['nothing', [], 4, []],
    ['one bucket', [7], 4, [[7, 8]]],
    ['neighbours', [1, 2, 3], 4, [[1, 4]]],
    ['a gap of exactly `gap` stays in the run', [1, 5], 4, [[1, 6]]],
    ['a wider gap starts a new run', [1, 6], 4, [[1, 2], [6, 7]]],
    ['gap 0 never joins', [1, 2], 0, [[1, 2], [2, 3]]],
    ['several runs', [0, 3, 20, 22, 100], 4, [[0, 4], [20, 23], [100, 101]]],
  ])('%s', (_name, sorted, gap, expected) => {
    expect(bucketRuns(sorted, gap)).toEqual(expected);
  });
});
