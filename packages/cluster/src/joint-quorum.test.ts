import { describe, expect, it } from 'vitest';
import { awaitJoint, type MemberAttempt } from './joint-quorum.ts';
import type { Clock } from '@hearsay/clock';

/** A clock whose deadline fires only when the test says so. */
function manualTimers(): Clock & { fire(): void } {
  let pending: (() => void) | undefined;
  return {
    now: () => 0,
    setTimer(fn) {
      pending = fn;
      return () => {
        pending = undefined;
      };
    },
    fire() {
      pending?.();
    },
  };
}

type Plan = Record<string, 'ok' | 'fail' | 'hang'>;
const attemptsOf = (plan: Plan): MemberAttempt<string>[] =>
  Object.entries(plan).map(([member, what]) => ({
    member,
    promise: what === 'ok' ? Promise.resolve(member) : what === 'fail' ? Promise.reject(new Error(member)) : new Promise<string>(() => undefined),
  }));

describe('awaitJoint', () => {
  it.each([
    { why: 'one set, a majority answered', plan: { a: 'ok', b: 'ok', c: 'hang' }, sets: [['a', 'b', 'c']], ok: true, acknowledged: 2, required: 2 },
    { why: 'one set, a majority failed', plan: { a: 'ok', b: 'fail', c: 'fail' }, sets: [['a', 'b', 'c']], ok: false, acknowledged: 1, required: 2 },
    { why: 'old and new sets, the shared members answer for both', plan: { a: 'ok', b: 'ok', c: 'hang', d: 'hang' }, sets: [['a', 'b', 'c'], ['a', 'b', 'd']], ok: true, acknowledged: 2, required: 2 },
    { why: 'a majority of the old set only is not enough', plan: { a: 'ok', c: 'ok', b: 'fail', d: 'fail' }, sets: [['a', 'b', 'c'], ['a', 'b', 'd']], ok: false, acknowledged: 1, required: 2 },
    { why: 'the new member and an old one make both majorities', plan: { a: 'ok', d: 'ok', c: 'ok', b: 'fail' }, sets: [['a', 'b', 'c'], ['a', 'b', 'd']], ok: true, acknowledged: 2, required: 2 },
    { why: 'a member without an attempt counts as failed', plan: { a: 'ok' }, sets: [['a', 'b', 'c']], ok: false, acknowledged: 1, required: 2 },
  ])('$why', async ({ plan, sets, ok, acknowledged, required }) => {
    const timers = manualTimers();
    const outcome = await awaitJoint(attemptsOf(plan as Plan), sets.map((members) => ({ members, need: 2 })), timers, 1000);
    expect(outcome).toMatchObject({ ok, acknowledged, required, timedOut: false });
  });

  it('times out when answers are still missing at the deadline, and reports the set furthest from its count', async () => {
    const timers = manualTimers();
    const run = awaitJoint(attemptsOf({ a: 'ok', b: 'hang', c: 'hang', d: 'hang' }), [{ members: ['a', 'b', 'c'], need: 2 }, { members: ['c', 'd'], need: 2 }], timers, 1000);
    await Promise.resolve();
    timers.fire();
    expect(await run).toMatchObject({ ok: false, timedOut: true, acknowledged: 0, required: 2 });
  });
});
