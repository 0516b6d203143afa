import { afterEach, describe, expect, it } from 'vitest';
import { onStopSignals, parseProcStat, type StopReason, type StopSignals } from './stop-signals.ts';

describe('parseProcStat', () => {
  const cases: ReadonlyArray<readonly [name: string, text: string, expected: ReturnType<typeof parseProcStat>]> = [
    [
      'a plain command',
      '4242 (node) S 4200 4242 4100 34816 4242 4194560 1 0 0 0 3 1 0 0 20 0 11 0 987654 1000 100',
      { pid: 4242, command: 'node', state: 'S', ppid: 4200, sessionId: 4100, startTime: '987654' },
    ],
    [
      'a command with spaces and parentheses',
      '77 (sh -c (x) y) Z 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12 0 0',
      { pid: 77, command: 'sh -c (x) y', state: 'Z', ppid: 1, sessionId: 77, startTime: '12' },
    ],
    ['too few fields', '4242 (node) S 4200 4242', undefined],
    ['no command', '4242 node S 4200 4242 4100', undefined],
    ['not a number', 'x (node) S 4200 4242 4100 34816 4242 4194560 1 0 0 0 3 1 0 0 20 0 11 0 987654', undefined],
    ['empty', '', undefined],
  ];
  it.each(cases)('%s', (_name, text, expected) => {
    expect(parseProcStat(text)).toEqual(expected);
  });
});

describe('onStopSignals', () => {
  let current: StopSignals | undefined;
  afterEach(() => current?.dispose());

  function watch(): { events: string[]; setNow(ms: number): void } {
    let nowMs = 0;
    const events: string[] = [];
    current = onStopSignals({
      onStop: (reason: StopReason) => events.push(reason.kind === 'signal' ? `stop ${reason.signal}` : 'stop launcher'),
      onDuplicate: (signal) => events.push(`duplicate ${signal}`),
      onForce: (signal) => events.push(`force ${signal}`),
      duplicateWindowMs: 1_000,
      clock: { now: () => nowMs, setTimer: () => () => undefined },
      env: {},
    });
    return { events, setNow: (ms) => (nowMs = ms) };
  }

  it('takes the first SIGINT or SIGTERM as the stop request', () => {
    const { events } = watch();
    process.emit('SIGTERM', 'SIGTERM');
    expect(events).toEqual(['stop SIGTERM']);
  });

  it('takes signals within the window as the same request (a launcher forwarding its copy)', () => {
    const { events, setNow } = watch();
    process.emit('SIGINT', 'SIGINT');
    setNow(130);
    process.emit('SIGINT', 'SIGINT');
    setNow(1_000);
    process.emit('SIGTERM', 'SIGTERM');
    expect(events).toEqual(['stop SIGINT', 'duplicate SIGINT', 'duplicate SIGTERM']);
  });

  it('takes a signal after the window as the user asking again', () => {
    const { events, setNow } = watch();
    process.emit('SIGINT', 'SIGINT');
    setNow(1_001);
    process.emit('SIGINT', 'SIGINT');
    expect(events).toEqual(['stop SIGINT', 'force SIGINT']);
  });

  it('hears nothing once disposed', () => {
    const { events } = watch();
    current?.dispose();
    process.emit('SIGINT', 'SIGINT');
    expect(events).toEqual([]);
  });
});
