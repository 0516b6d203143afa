/** Child processes of the bench scripts. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

const ROOT = new URL('../..', import.meta.url).pathname;
const START_DEADLINE_MS = 30_000;
/** USER_HZ: 100 on every Linux we run on. */
const CLOCK_TICKS_PER_S = 100;

export interface Server {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
}

/**
 * Spawns `node [nodeFlags] --conditions=@hearsay/source --import tsx <args>` from the repo root, for a
 * server that prints a JSON line with its `http` URL, and waits for it.
 */
export async function startServer(name: string, args: readonly string[], nodeFlags: readonly string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [...nodeFlags, '--conditions=@hearsay/source', '--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${START_DEADLINE_MS} ms:\n${output}`)), START_DEADLINE_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.startsWith('{')) continue;
        const http = (JSON.parse(line) as { http?: unknown }).http;
        if (typeof http === 'string') {
          clearTimeout(timer);
          resolve(http);
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${output}`)));
  });
  child.stdout?.resume();
  return { name, url, child };
}

/** utime + stime, in seconds, from a /proc `stat` line (process or thread). */
function cpuSecondsOfStat(stat: string): number {
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/**
 * CPU seconds (user + system, every thread) a process has used, from
 * /proc/<pid>/stat; undefined off Linux. Unlike throughput, the CPU cost per
 * request barely moves with the load other programs put on the machine.
 */
export async function cpuSecondsOf(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    return cpuSecondsOfStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds of each thread of a process by thread id, from /proc/<pid>/task; empty off Linux. */
export async function threadCpuSecondsOf(pid: number | undefined): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (pid === undefined) return out;
  let tids: string[];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(Number(tid), cpuSecondsOfStat(await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** SIGTERM and wait for the exit; at once if it has already exited. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * Waits until the background threads of a process (every thread but the
 * main one: LevelDB's compaction, the libuv pool, V8's helpers) have been
 * nearly idle for `windowMs`, or until `deadlineMs` passes; returns how long
 * it waited. Benchmarks call it between measurements, so one side's
 * compaction does not run during the next side's turn. Off Linux (no /proc)
 * it returns at once.
 */
export async function waitForQuietThreads(
  pid: number = process.pid,
  { windowMs = 200, maxBusyFraction = 0.1, deadlineMs = 10_000 }: { windowMs?: number; maxBusyFraction?: number; deadlineMs?: number } = {},
): Promise<number> {
  const start = Date.now();
  const background = async (): Promise<number | undefined> => {
    const threads = await threadCpuSecondsOf(pid);
    if (threads.size === 0) return undefined;
    let total = 0;
    for (const [tid, seconds] of threads) if (tid !== pid) total += seconds;
    return total;
  };
  let before = await background();
  if (before === undefined) return 0;
  while (Date.now() - start < deadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = await background();
    if (after === undefined) break;
    if (after - before <= (windowMs / 1000) * maxBusyFraction) break;
    before = after;
  }
  return Date.now() - start;
}
