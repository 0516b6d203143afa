import { readFile } from 'node:fs/promises';
import { backgroundClock, type Clock } from '@hearsay/clock';

/**
 * How a long-running command (`hearsay start`, `hearsay dev`) learns that it
 * should stop: SIGINT and SIGTERM, and — when a package manager launched it —
 * the launcher going away.
 *
 * Duplicates. A terminal's Ctrl-C reaches every process of the foreground
 * group, and launchers forward what they receive: under `npx pnpm start` a
 * node may get the SIGINT pnpm forwards and, a moment later, the SIGTERM pnpm
 * escalates to when npm forwards its own copy. Signals within
 * `duplicateWindowMs` of the first are the same request. One that comes later
 * is the user asking again: the command gives up waiting (`onForce`).
 *
 * Launchers. `npx pnpm start` runs `npm exec` -> `sh -c pnpm` -> `pnpm` ->
 * `sh` -> node. A supervisor's SIGTERM to the `npm exec` it started is
 * forwarded to npm's `sh` only, which dies and leaves pnpm and the node
 * running as orphans. So a process started by a package-manager script
 * (`npm_lifecycle_event` in its environment) watches its ancestors up to the
 * session leader (the terminal's shell) and stops as on SIGTERM when one of
 * them exits. Linux only (it reads /proc); elsewhere nothing is watched.
 */
export interface StopSignalsOptions {
  /** The first request to stop: a signal, or a description of the launcher that went away. */
  onStop(reason: StopReason): void;
  /** A further signal after the duplicate window: stop waiting. */
  onForce(signal: NodeJS.Signals): void;
  /** A duplicate, ignored; for a debug log. */
  onDuplicate?(signal: NodeJS.Signals): void;
  readonly duplicateWindowMs?: number;
  readonly launcherPollMs?: number;
  /** Default: `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Time for the duplicate window and the launcher polls. Default: `backgroundClock` of `@hearsay/clock` (its timers never keep the process alive). */
  readonly clock?: Clock;
}

export type StopReason =
  | { readonly kind: 'signal'; readonly signal: NodeJS.Signals }
  | { readonly kind: 'launcher-exited'; readonly pid: number; readonly command: string };

export const DEFAULT_DUPLICATE_WINDOW_MS = 1_000;
export const DEFAULT_LAUNCHER_POLL_MS = 500;
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export interface StopSignals {
  /** Removes the signal handlers and the launcher watch. */
  dispose(): void;
}

export function onStopSignals(options: StopSignalsOptions): StopSignals {
  const windowMs = options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
  const clock = options.clock ?? backgroundClock;
  let firstAtMs: number | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    const nowMs = clock.now();
    if (firstAtMs === undefined) {
      firstAtMs = nowMs;
      options.onStop({ kind: 'signal', signal });
    } else if (nowMs - firstAtMs <= windowMs) {
      options.onDuplicate?.(signal);
    } else {
      options.onForce(signal);
    }
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

  let cancelPoll: (() => void) | undefined;
  let disposed = false;
  const env = options.env ?? process.env;
  if (process.platform === 'linux' && env.npm_lifecycle_event !== undefined) {
    void launcherChain(process.ppid).then((chain) => {
      if (disposed || chain.length === 0) return;
      const poll = async (): Promise<void> => {
        for (const ancestor of chain) {
          if (!(await isRunning(ancestor))) {
            if (disposed || firstAtMs !== undefined) return;
            firstAtMs = clock.now();
            options.onStop({ kind: 'launcher-exited', pid: ancestor.pid, command: ancestor.command });
            return;
          }
        }
        if (!disposed) cancelPoll = clock.setTimer(() => void poll(), options.launcherPollMs ?? DEFAULT_LAUNCHER_POLL_MS);
      };
      void poll();
    });
  }
  return {
    dispose() {
      disposed = true;
      cancelPoll?.();
      for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
    },
  };
}

/** One process as /proc/PID/stat describes it. */
export interface ProcStat {
  readonly pid: number;
  readonly command: string;
  /** R, S, D, Z (exited, not yet reaped), ... */
  readonly state: string;
  readonly ppid: number;
  readonly sessionId: number;
  /** Clock ticks after boot; tells a process from a later one that reuses its pid. */
  readonly startTime: string;
}

/** Parses /proc/PID/stat; `undefined` for anything else. The command may hold spaces and parentheses, so it ends at the last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // After the command: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const state = fields[0] ?? '';
  const ppid = Number(fields[1]);
  const sessionId = Number(fields[3]);
  const startTime = fields[19];
  if (!Number.isInteger(pid) || !Number.isInteger(ppid) || !Number.isInteger(sessionId) || startTime === undefined || !/^\d+$/.test(startTime)) {
    return undefined;
  }
  return { pid, command: text.slice(open + 1, close), state, ppid, sessionId, startTime };
}

async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The ancestors from `pid` up, stopping below the session leader and pid 1. */
async function launcherChain(pid: number): Promise<ProcStat[]> {
  const chain: ProcStat[] = [];
  for (let current = pid; current > 1 && chain.length < 32; ) {
    const stat = await readProcStat(current);
    if (stat === undefined || stat.pid === stat.sessionId) break;
    chain.push(stat);
    current = stat.ppid;
  }
  return chain;
}

async function isRunning(ancestor: ProcStat): Promise<boolean> {
  const now = await readProcStat(ancestor.pid);
  return now !== undefined && now.startTime === ancestor.startTime && now.state !== 'Z' && now.state !== 'X';
}
