import { describe, expect, it } from 'vitest';
import { BroadcastQueue, retransmitLimit } from './broadcast-queue.ts';
import { MessageType } from './messages.ts';
import type { Alive, PacketMessage } from './messages.ts';

const alive = (id: string, incarnation = 0): Alive => ({ type: MessageType.Alive, id, address: `${id}:1`, generation: 1, incarnation });

describe('retransmitLimit (memberlist util_test)', () => {
  it.each([
    [3, 0, 0],
    [3, 1, 3],
    [3, 99, 6],
    [4, 99, 8],
    [4, 100, 12],
    [4, 999, 12],
    [4, 1000, 16],
  ])('mult %i, n %i → %i', (mult, n, expected) => {
    expect(retransmitLimit(mult, n)).toBe(expected);
  });
});

describe('BroadcastQueue', () => {
  it('sends each rumor at most `limit` times, then drops it', () => {
    const q = new BroadcastQueue(100);
    q.push('m:a', alive('a'));
    const sent: PacketMessage[][] = [];
    for (let i = 0; i < 5; i++) sent.push(q.take(1000, 3));
    expect(sent.map((s) => s.length)).toEqual([1, 1, 1, 0, 0]);
    expect(q.size).toBe(0);
  });

  it('a newer rumor about the same subject replaces the queued one', () => {
    const q = new BroadcastQueue(100);
    q.push('m:a', alive('a', 1));
    q.push('m:a', alive('a', 2));
    expect(q.size).toBe(1);
    expect(q.take(1000, 3)).toEqual([alive('a', 2)]);
  });

  it('prefers rumors sent fewest times, then the newest', () => {
    const q = new BroadcastQueue(100);
    q.push('m:a', alive('a'));
    q.take(1000, 10); // a sent once
    q.push('m:b', alive('b'));
    q.push('m:c', alive('c'));
    const got = q.take(1000, 10).map((m) => (m as Alive).id);
    expect(got).toEqual(['c', 'b', 'a']);
  });

  it('respects the byte budget and skips what does not fit', () => {
    const q = new BroadcastQueue(100);
    for (let i = 0; i < 50; i++) q.push(`m:${i}`, alive(`member-${i}`));
    const got = q.take(300, 10);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(50);
    expect(q.take(0, 10)).toEqual([]);
  });

  it('is bounded: beyond maxItems the most-sent, oldest rumors go first', () => {
    const q = new BroadcastQueue(3);
    q.push('m:a', alive('a'));
    q.take(1000, 10);
    q.push('m:b', alive('b'));
    q.push('m:c', alive('c'));
    q.push('m:d', alive('d'));
    expect(q.size).toBe(3);
    expect(q.dropped).toBe(1);
    expect(q.peek('m:a')).toBeUndefined();
  });

  it('sends a rumor pushed with a limit multiplier that many times the limit (join announcements)', () => {
    const q = new BroadcastQueue(100);
    q.push('m:a', alive('a'), 2);
    q.push('m:b', alive('b'));
    const sends = { a: 0, b: 0 };
    for (let i = 0; i < 10; i++) for (const m of q.take(1000, 3)) sends[(m as Alive).id as 'a' | 'b']++;
    expect(sends).toEqual({ a: 6, b: 3 });
  });
});
