import { describe, expect, it } from 'vitest';
import { MessageType, type UserEvent } from './messages.ts';
import { UserEventLog } from './user-events.ts';

const ev = (origin: string, seq: number, generation = 1): UserEvent => ({
  type: MessageType.UserEvent,
  origin,
  generation,
  seq,
  name: 'n',
  payload: new Uint8Array([seq]),
});

describe('UserEventLog', () => {
  it('accepts each event once; the floor follows contiguous seqs, a gap holds it', () => {
    const log = new UserEventLog(16, 16);
    expect(log.accept(ev('a', 1))).toBe(true);
    expect(log.accept(ev('a', 1))).toBe(false);
    expect(log.accept(ev('a', 3))).toBe(true);
    expect(log.floorOf('a', 1)).toBe(1);
    expect(log.accept(ev('a', 2))).toBe(true);
    expect(log.floorOf('a', 1)).toBe(3);
    expect(log.accept(ev('a', 3))).toBe(false);
    expect(log.floorOf('b', 1)).toBe(0);
  });

  it('a new generation of an origin starts over; events of an older one are refused', () => {
    const log = new UserEventLog(16, 16);
    log.accept(ev('a', 1));
    log.accept(ev('a', 2));
    expect(log.accept(ev('a', 1, 2))).toBe(true);
    expect(log.floorOf('a', 2)).toBe(1);
    expect(log.floorOf('a', 1)).toBe(0);
    expect(log.accept(ev('a', 3, 1))).toBe(false);
    const out: UserEvent[] = [];
    log.eventsAbove('a', 1, 0, 10, out);
    expect(out).toEqual([]);
  });

  it('buffers the most recent events for anti-entropy, per origin, above a floor', () => {
    const log = new UserEventLog(3, 16);
    for (let s = 1; s <= 5; s++) log.accept(ev('a', s));
    log.accept(ev('b', 1));
    expect(log.buffered).toBe(3);
    const out: UserEvent[] = [];
    log.eventsAbove('a', 1, 3, 10, out);
    expect(out.map((e) => e.seq)).toEqual([4, 5]);
    const fromB: UserEvent[] = [];
    log.eventsAbove('b', 1, 0, 10, fromB);
    expect(fromB.map((e) => e.seq)).toEqual([1]);
  });

  it('skipTo marks older events delivered without delivering them (a joiner), never moving back', () => {
    const log = new UserEventLog(16, 16);
    log.skipTo('a', 1, 7);
    expect(log.accept(ev('a', 6))).toBe(false);
    expect(log.accept(ev('a', 8))).toBe(true);
    log.skipTo('a', 1, 2);
    expect(log.floorOf('a', 1)).toBe(8);
  });

  it('gives up a gap older than anything buffered once too many events wait above it', () => {
    const log = new UserEventLog(4, 16);
    for (let s = 2; s <= 6; s++) log.accept(ev('a', s)); // 1 never arrives
    expect(log.floorOf('a', 1)).toBe(6);
    expect(log.accept(ev('a', 1))).toBe(false);
  });

  it('bounds the origins it tracks and forgets a reaped one', () => {
    const log = new UserEventLog(16, 2);
    expect(log.accept(ev('a', 1))).toBe(true);
    expect(log.accept(ev('b', 1))).toBe(true);
    expect(log.accept(ev('c', 1))).toBe(false);
    log.forget('a');
    expect(log.accept(ev('c', 1))).toBe(true);
    expect(log.buffered).toBe(2);
  });
});
