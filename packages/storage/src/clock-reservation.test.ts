import { describe, expect, it } from 'vitest';
import { needsReservation, openingReservation, renewedReservation } from './clock-reservation.ts';

describe('the clock mark', () => {
  it.each([
    ['the wall clock ahead of the old mark', 500, 2000, 1000, 3000],
    ['the old mark ahead of the wall clock (a clock that went back)', 5000, 2000, 1000, 6000],
  ])('opening with %s: past both', (_name, storedMs, wallMs, reserveMs, expected) => {
    expect(openingReservation(storedMs, wallMs, reserveMs)).toBe(expected);
  });

  it.each([
    ['well below the mark', 1000, 2000, 1000, false],
    ['exactly half the reserve below the mark', 1500, 2000, 1000, false],
    ['within half the reserve of the mark', 1501, 2000, 1000, true],
    ['past the mark', 2500, 2000, 1000, true],
  ])('a clock %s needs a new one: %s', (_name, clockMs, reservedMs, reserveMs, expected) => {
    expect(needsReservation(clockMs, reservedMs, reserveMs)).toBe(expected);
  });

  it.each([
    ['the reserve past the clock', 1600, 2000, 1000, 2600],
    ['never below the old mark', 500, 2000, 1000, 2000],
  ])('a renewed mark is %s', (_name, clockMs, reservedMs, reserveMs, expected) => {
    expect(renewedReservation(clockMs, reservedMs, reserveMs)).toBe(expected);
  });
});
