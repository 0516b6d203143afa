/**
 * Shared by the real-process tests (test/cli-e2e.test.ts and the cluster
 * tests through test/cluster-processes.ts): a `hearsay` child process whose
 * output is collected as it arrives, and waits that poll a condition or race
 * a promise against a deadline. Nothing here sleeps a fixed time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const BIN = join(ROOT, 'packages/cli/src/bin.ts');

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** How a test file waits: how long before it fails, and how often `until` polls. */
export interface Waits {
  readonly deadlineMs: number;
  readonly pollMs: number;
}

export interface CliProcessOptions extends Waits {
  /** 'pipe' where a test writes to the process's stdin. */
  readonly stdin: 'pipe' | 'ignore';
  /** A command that runs node, e.g. `['faketime', '-f', '+1h']` for a clock an hour ahead. */
  readonly prefix?: readonly string[];
}

/** A `hearsay` process whose stdout (JSON logs) and stderr are collected as they arrive. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    private readonly options: CliProcessOptions,
  ) {
    // `node --import tsx` rather than pnpm: one process, and about a second faster.
    const command = [...(options.prefix ?? []), process.execPath, '--conditions=@hearsay/source', '--import', 'tsx', BIN, ...args];
    this.child = spawn(command[0]!, command.slice(1), {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: [options.stdin, 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  logs(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** The first log line that `matches`, once it is written. */
  async waitForLog(matches: (line: LogLine) => boolean): Promise<LogLine> {
    return until(() => this.logs().find(matches), () => `log line not seen; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`, this.options);
  }

  async exitCode(): Promise<number | null> {
    const exit = await withDeadline(this.exited, () => `process did not exit; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`, this.options.deadlineMs);
    return exit.code;
  }
}

/** `promise`, or a rejection naming `describe()` once `deadlineMs` has passed. */
export async function withDeadline<T>(promise: Promise<T>, describe: () => string, deadlineMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline of ${deadlineMs} ms passed: ${describe()}`)), deadlineMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` every `pollMs` until it returns a value, or fails once `deadlineMs` has passed. */
export async function until<T>(probe: () => T | undefined | Promise<T | undefined>, describe: () => string, waits: Waits): Promise<T> {
  const end = Date.now() + waits.deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`deadline of ${waits.deadlineMs} ms passed: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, waits.pollMs));
  }
}
