/**
 * The README's start command as a person and a supervisor stop it: Ctrl-C
 * (SIGINT to the whole foreground process group, which is what a terminal
 * sends) and SIGTERM to the process that was launched. Real `npx -y pnpm@12
 * start` processes from the repo root, on free ports and a temporary data dir
 * (through the HEARSAY_* variables, as a user would set them).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { freeConsecutivePorts, freePorts } from './cluster-processes.ts';
import { ROOT, until, withDeadline, type LogLine } from './support/processes.ts';

const WAITS = { deadlineMs: 60_000, pollMs: 100 };
const launched: Launched[] = [];
const dirs: string[] = [];
/** Node processes a test saw, killed after it if a failure left them running. */
const nodePids: number[] = [];

afterEach(async () => {
  for (const run of launched.splice(0)) run.kill('SIGKILL');
  for (const pid of nodePids.splice(0)) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

class Launched {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv) {
    // detached: a process group (and session) of its own, like a terminal's foreground job.
    this.child = spawn('npx', ['-y', 'pnpm@12', ...args], { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  logs(): LogLine[] {
    return this.output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** The signal to every process of the group: npm, its sh, pnpm (the node runs in pnpm's own group). */
  signalGroup(signal: NodeJS.Signals): void {
    process.kill(-this.child.pid!, signal);
  }

  kill(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      // already gone
    }
  }
}

async function launchStart(): Promise<{ run: Launched; url: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hearsay-launcher-'));
  dirs.push(dataDir);
  const [httpPort, gossipPort] = await freePorts(2, true);
  const run = new Launched(['start'], {
    HEARSAY_DATA_DIR: dataDir,
    HEARSAY_HTTP_PORT: String(httpPort),
    HEARSAY_GOSSIP_PORT: String(gossipPort),
  });
  launched.push(run);
  const serving = await until(() => run.logs().find((line) => line.msg.includes(' serving ')), () => `node did not serve:\n${run.output}`, WAITS);
  nodePids.push(serving.pid as number);
  return { run, url: `http://127.0.0.1:${httpPort}` };
}

/** Processes whose command line has `text` in one of its arguments (Linux /proc). */
async function pidsWhoseArgsInclude(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const args = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (args.split('\0').some((arg) => arg.includes(text)) && args.includes('start')) pids.push(Number(entry));
  }
  return pids;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npx -y pnpm@12 start', () => {
  it('stops cleanly on Ctrl-C: one stop request, the store closed, the node exits 0', async () => {
    const { run, url } = await launchStart();
    expect((await fetch(`${url}/v1/health`)).status).toBe(200);
    const nodePid = run.logs()[0]!.pid as number;

    run.signalGroup('SIGINT');
    const exit = await withDeadline(run.exited, () => `launcher did not exit:\n${run.output}`, WAITS.deadlineMs);
    const messages = run.logs().map((line) => line.msg);
    expect(messages.filter((msg) => msg.startsWith('received SIG'))).toEqual(['received SIGINT']);
    expect(messages.some((msg) => msg.startsWith('second '))).toBe(false);
    expect(messages).toContain('store closed; node stopped');
    expect(messages.at(-1)).toBe('exiting with status 0');
    expect(isRunning(nodePid)).toBe(false);
    // npm re-raises the SIGINT the terminal sent it once its child is done
    // (npm's run-script), so npx itself ends by SIGINT, as any npm-run program does.
    expect(exit.signal === 'SIGINT' || exit.code === 130 || exit.code === 0).toBe(true);
  });

  it('stops cleanly when the launcher gets SIGTERM, leaving no node process behind', async () => {
    const { run } = await launchStart();
    const nodePid = run.logs()[0]!.pid as number;

    process.kill(run.child.pid!, 'SIGTERM');
    await until(() => (isRunning(nodePid) ? undefined : true), () => `node ${nodePid} still runs after SIGTERM to npx:\n${run.output}`, WAITS);
    const messages = run.logs().map((line) => line.msg);
    expect(messages.some((msg) => /^the process that launched this node \(.+, pid \d+\) exited; stopping as on SIGTERM$/.test(msg))).toBe(true);
    expect(messages).toContain('store closed; node stopped');
    expect(messages.at(-1)).toBe('exiting with status 0');
  });
});

describe('npx -y pnpm@12 hearsay dev', () => {
  it('stops every node when the launcher gets SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hearsay-launcher-dev-'));
    dirs.push(dataDir);
    const [basePort, gossipBasePort] = await freeConsecutivePorts(2);
    const run = new Launched(['hearsay', 'dev', '--nodes', '2', '--base-port', String(basePort), '--gossip-base-port', String(gossipBasePort), '--data-dir', dataDir], {});
    launched.push(run);
    await until(() => (run.output.includes('is serving:') ? true : undefined), () => `dev cluster did not serve:\n${run.output}`, WAITS);
    const devPids = await pidsWhoseArgsInclude(dataDir);
    nodePids.push(...devPids);
    expect(devPids).toHaveLength(2);

    process.kill(run.child.pid!, 'SIGTERM');
    await until(() => (devPids.some(isRunning) ? undefined : true), () => `nodes still run after SIGTERM to npx:\n${run.output}`, WAITS);
    expect(run.output).toContain('dev cluster stopped\n');
    expect(run.output).not.toContain('some nodes did not stop cleanly');
  });
});
