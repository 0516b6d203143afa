import type { Clock } from '@hearsay/clock';
import { describe, expect, it } from 'vitest';
import type { ClockStatus } from '@hearsay/storage';
import { ClockFence, type ClockOffset, type ClockVerdict } from './clock-fence.ts';
import { StaticMembership, type MemberInfo } from './membership.ts';

const MAX = 500;

function member(id: string, state: MemberInfo['state'] = 'alive'): MemberInfo {
  return { id, state, http: `http://${id}`, gossip: '', incarnation: 0 };
}

/** A store clock `aheadMs` ahead of its wall clock (0: in step). */
function storeClock(aheadMs = 0): { clockStatus(): ClockStatus } {
  return {
    clockStatus: () => ({
      wallMs: 1_000_000,
      readingMs: 1_000_000 + aheadMs,
      aheadMs,
      maxOffsetMs: MAX,
      stampsResumeAtMs: aheadMs > MAX ? 1_000_000 + aheadMs - MAX : null,
      versionsRefused: 0,
      stampsRefused: 0,
    }),
  };
}

const noTimers: Clock = { now: () => 0, setTimer: () => () => undefined };

/** An offset `ms` (that member minus us) with error `errorMs`. */
const at = (ms: number, errorMs = 2, measuredAtMs = 1): ClockOffset => ({ offsetMs: ms, errorMs, measuredAtMs });

interface Case {
  readonly name: string;
  /** Other members and their states (alive unless said). */
  readonly peers: readonly (string | [string, MemberInfo['state']])[];
  /** Offsets measured, by member; absent: not measured. null: no offset source at all. */
  readonly offsets: Readonly<Record<string, ClockOffset>> | null;
  readonly storeAheadMs?: number;
  readonly expected: Partial<ClockVerdict>;
}

const cases: Case[] = [
  { name: 'no offset source: nothing to compare with', peers: ['b', 'c'], offsets: null, expected: { state: 'ok', measuring: false } },
  { name: 'alone: nothing to compare with', peers: [], offsets: {}, expected: { state: 'ok', reachable: 0 } },
  {
    name: 'every member within the offset',
    peers: ['b', 'c', 'd', 'e'],
    offsets: { b: at(10), c: at(-200), d: at(495, 10), e: at(0) },
    expected: { state: 'ok', within: 3, beyond: 0 }, // d: 495 ± 10 may be past 500: uncertain
  },
  {
    name: 'itself and two of four within make a majority of five; two not measured yet',
    peers: ['b', 'c', 'd', 'e'],
    offsets: { b: at(10), c: at(20) },
    expected: { state: 'ok', within: 2 },
  },
  {
    name: 'one of four measured: not verified (just started or joined)',
    peers: ['b', 'c', 'd', 'e'],
    offsets: { b: at(10) },
    expected: { state: 'unverified', within: 1, beyond: 0, reachable: 4 },
  },
  {
    name: 'an hour ahead of every member: skewed, with its offset',
    peers: ['b', 'c', 'd', 'e'],
    offsets: { b: at(-3_600_010, 3), c: at(-3_600_000, 1), d: at(-3_599_990, 2), e: at(-3_600_005, 2) },
    expected: { state: 'skewed', beyond: 4, offsetMs: 3_600_005, errorMs: 3 },
  },
  {
    name: 'behind three of four by a second: skewed',
    peers: ['b', 'c', 'd', 'e'],
    offsets: { b: at(1000), c: at(1010), d: at(990), e: at(100) },
    expected: { state: 'skewed', within: 1, beyond: 3, offsetMs: -1000 },
  },
  {
    name: 'one of two others beyond (the skewed one is the other): ok',
    peers: ['b', 'c'],
    offsets: { b: at(2000), c: at(5) },
    expected: { state: 'ok', within: 1, beyond: 1 },
  },
  {
    name: 'two nodes beyond each other: neither can tell who is wrong',
    peers: ['b'],
    offsets: { b: at(2000) },
    expected: { state: 'unverified', within: 0, beyond: 1 },
  },
  {
    name: 'an error bound that straddles the offset counts as neither',
    peers: ['b', 'c'],
    offsets: { b: at(480, 40), c: at(530, 40) },
    expected: { state: 'unverified', within: 0, beyond: 0 },
  },
  {
    name: 'dead and left members are not compared',
    peers: ['b', ['c', 'dead'], ['d', 'left'], ['e', 'suspect']],
    offsets: { b: at(5), c: at(9000), d: at(9000), e: at(10) },
    expected: { state: 'ok', reachable: 2, within: 2, beyond: 0 },
  },
  {
    name: 'its store clock more than the offset ahead of its wall clock: ahead, whatever the members say',
    peers: ['b', 'c'],
    offsets: { b: at(0), c: at(0) },
    storeAheadMs: 3_600_000,
    expected: { state: 'ahead', stampsResumeAtMs: 1_000_000 + 3_600_000 - MAX },
  },
];

describe('ClockFence: the verdict', () => {
  it.each(cases)('$name', ({ peers, offsets, storeAheadMs = 0, expected }) => {
    const members = [member('a'), ...peers.map((p) => (typeof p === 'string' ? member(p) : member(p[0], p[1])))];
    const fence = new ClockFence({
      membership: new StaticMembership('a', members),
      store: storeClock(storeAheadMs),
      ...(offsets === null ? {} : { offsets: { clockOffsets: () => new Map(Object.entries(offsets)) } }),
      monotonicMs: () => 0,
      clock: noTimers,
    });
    const verdict = fence.verdict();
    expect(verdict).toMatchObject(expected);
    expect(verdict.reason === undefined).toBe(verdict.state === 'ok');
  });

  it('says why, with the figures', () => {
    const fence = new ClockFence({
      membership: new StaticMembership('a', ['a', 'b', 'c', 'd', 'e'].map((id) => member(id))),
      store: storeClock(),
      offsets: { clockOffsets: () => new Map(['b', 'c', 'd', 'e'].map((id) => [id, at(-3_600_000, 3)])) },
      monotonicMs: () => 0,
      clock: noTimers,
    });
    expect(fence.verdict().reason).toBe(
      "clock skew: this node's clock is 3600000 ms (±3 ms) ahead of 4 of the 4 other members it can reach, more than the maximum offset of 500 ms; " +
        'it coordinates no writes until its clock is back within it (check NTP on this machine)',
    );
  });
});

describe('ClockFence: over time', () => {
  function setup() {
    const clock = { wall: 1_000_000, mono: 0 };
    const offsets = new Map<string, ClockOffset>([
      ['b', at(5, 2, 100)],
      ['c', at(-5, 2, 100)],
    ]);
    const changes: string[] = [];
    const jumps: number[] = [];
    const timers = new (class implements Clock {
      fns: (() => void)[] = [];
      now = (): number => clock.wall;
      setTimer = (fn: () => void): (() => void) => {
        this.fns.push(fn);
        return () => undefined;
      };
    })();
    const fence = new ClockFence({
      membership: new StaticMembership('a', ['a', 'b', 'c'].map((id) => member(id))),
      store: storeClock(),
      offsets: { clockOffsets: () => offsets },
      monotonicMs: () => clock.mono,
      clock: timers,
      cacheMs: 100,
      onChange: (v, p) => changes.push(`${p.state}->${v.state}`),
      onJump: (ms) => jumps.push(ms),
    });
    return { clock, offsets, fence, changes, jumps, timers };
  }

  it('a jump of the wall clock makes the offsets taken before it worthless until each member is measured again', () => {
    const { clock, offsets, fence, changes, jumps } = setup();
    expect(fence.verdict().state).toBe('ok');
    clock.mono += 50;
    clock.wall += 50 + 2000; // stepped two seconds forward
    expect(fence.verdict().state).toBe('unverified');
    expect(jumps).toEqual([2000]);
    expect(fence.jumps).toBe(1);
    // b is measured again (its clock now 2 s behind ours): beyond; c's old estimate still does not count.
    offsets.set('b', at(-2000, 2, 200));
    expect(fence.refresh()).toMatchObject({ state: 'unverified', beyond: 1, within: 0 });
    offsets.set('c', at(-2000, 2, 210));
    expect(fence.refresh()).toMatchObject({ state: 'skewed', offsetMs: 2000 });
    // The clock is fixed (stepped back) and both are measured again: ok.
    clock.mono += 50;
    clock.wall += 50 - 2000;
    expect(fence.verdict().state).toBe('unverified');
    offsets.set('b', at(4, 2, 300));
    offsets.set('c', at(-6, 2, 310));
    expect(fence.refresh().state).toBe('ok');
    expect(changes).toEqual(['ok->unverified', 'unverified->skewed', 'skewed->unverified', 'unverified->ok']);
  });

  it('reuses a verdict for cacheMs of monotonic time; a periodic check takes it without a write, and reports changes', () => {
    const { clock, offsets, fence, changes, timers } = setup();
    expect(fence.verdict().state).toBe('ok');
    offsets.set('b', at(-3000, 2, 150));
    offsets.set('c', at(-3000, 2, 160));
    clock.mono += 99;
    clock.wall += 99;
    expect(fence.verdict().state).toBe('ok');
    clock.mono += 1;
    clock.wall += 1;
    expect(fence.verdict().state).toBe('skewed');
    offsets.set('b', at(0, 2, 170));
    offsets.set('c', at(0, 2, 180));
    fence.start();
    expect(timers.fns).toHaveLength(1);
    timers.fns.shift()!();
    expect(changes).toEqual(['ok->skewed', 'skewed->ok']);
    expect(timers.fns).toHaveLength(1);
    fence.stop();
  });
});
