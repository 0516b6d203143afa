import { describe, expect, it } from 'vitest';
import { SimNetwork } from './network.ts';
import { createRandom } from './random.ts';
import { Scheduler } from './scheduler.ts';

function setup(loss = 0) {
  const s = new Scheduler();
  const net = new SimNetwork<string>(s, createRandom(7), { lossRate: loss, delayMs: 5, jitterMs: 0 });
  const got: Record<string, string[]> = { a: [], b: [], c: [] };
  for (const n of ['a', 'b', 'c']) net.attach(n, (from, p, now) => got[n]!.push(`${from}:${p}@${now}`));
  return { s, net, got };
}

describe('SimNetwork', () => {
  it('delivers after the link delay', () => {
    const { s, net, got } = setup();
    net.send('a', 'b', 'hi');
    s.runUntil(4);
    expect(got['b']).toEqual([]);
    s.runUntil(5);
    expect(got['b']).toEqual(['a:hi@5']);
  });

  it('drops about lossRate of datagrams, never a reliable send', () => {
    const { s, net, got } = setup(0.2);
    for (let i = 0; i < 10_000; i++) net.send('a', 'b', 'x');
    for (let i = 0; i < 100; i++) net.send('a', 'c', 'y', true);
    s.runUntil(100);
    expect(Math.abs(got['b']!.length - 8000)).toBeLessThan(250);
    expect(got['c']).toHaveLength(100);
    expect(net.stats.droppedLoss).toBe(10_000 - got['b']!.length);
  });

  it('per-link parameters override the defaults, one direction only', () => {
    const { s, net, got } = setup();
    net.setLink('a', 'b', { delayMs: 50 });
    net.send('a', 'b', 'slow');
    net.send('b', 'a', 'fast');
    s.runUntil(10);
    expect(got['a']).toEqual(['b:fast@5']);
    expect(got['b']).toEqual([]);
    s.runUntil(50);
    expect(got['b']).toEqual(['a:slow@50']);
  });

  it('partitions cut groups apart (reliable sends too) until healed', () => {
    const { s, net, got } = setup();
    net.partition([['a'], ['b', 'c']]);
    expect(net.send('a', 'b', '1', true)).toBe(false);
    net.send('b', 'c', '2');
    expect(net.canReach('a', 'c')).toBe(false);
    s.runUntil(10);
    expect(got['b']).toEqual([]);
    expect(got['c']).toEqual(['b:2@5']);
    net.heal();
    net.send('a', 'b', '3');
    s.runUntil(20);
    expect(got['b']).toEqual(['a:3@15']);
    expect(net.stats.droppedPartition).toBe(1);
  });

  it('a crashed node receives nothing and its timers never fire, even after restart', () => {
    const { s, net, got } = setup();
    const fired: number[] = [];
    net.timer('b', 10, (now) => fired.push(now));
    net.send('a', 'b', 'lost');
    net.crash('b');
    expect(net.isUp('b')).toBe(false);
    expect(net.send('b', 'a', 'from the dead')).toBe(false);
    s.runUntil(20);
    expect(got['b']).toEqual([]);
    expect(fired).toEqual([]);
    const again: string[] = [];
    net.restart('b', (from, p) => again.push(`${from}:${p}`));
    net.timer('b', 30, (now) => fired.push(now));
    net.send('a', 'b', 'back');
    s.runUntil(40);
    expect(again).toEqual(['a:back']);
    expect(fired).toEqual([30]);
  });

  it('a stalled node gets its messages and timers when the stall ends, in original order', () => {
    const { s, net } = setup();
    const log: string[] = [];
    net.attach('b', (from, p, now) => log.push(`msg ${p}@${now}`));
    net.stall('b', 100);
    net.timer('b', 20, (now) => log.push(`timer@${now}`));
    net.send('a', 'b', 'm1'); // arrives at 5
    s.schedule(30, () => net.send('a', 'b', 'm2')); // arrives at 35
    s.runUntil(99);
    expect(log).toEqual([]);
    s.runUntil(100);
    expect(log).toEqual(['msg m1@100', 'timer@100', 'msg m2@100']);
    expect(net.isStalled('b')).toBe(false);
  });
});
