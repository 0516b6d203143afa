/**
 * `hearsay dev` as a user runs it: three child nodes on consecutive loopback
 * ports, the "how to reach" text once they serve, a write through one node
 * read through another, `hearsay status` listing all three with their
 * partitions, the cluster key handed to the nodes in their environment and
 * never on their command lines, and a clean stop on SIGINT (the Ctrl-C of a
 * terminal).
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freeConsecutivePorts, Proc, runCli, until } from './cluster-processes.ts';

let dev: Proc | undefined;
let tmp: string | undefined;

afterAll(async () => {
  if (dev !== undefined && dev.child.exitCode === null) {
    dev.child.kill('SIGTERM');
    await dev.exited;
  }
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

it('runs a local 3-node cluster, says how to reach it, and stops cleanly on SIGINT', async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hearsay-dev-'));
  const [basePort, gossipBasePort] = await freeConsecutivePorts(3);
  dev = new Proc(['dev', '--nodes', '3', '--base-port', String(basePort), '--gossip-base-port', String(gossipBasePort), '--data-dir', tmp]);
  const running = dev;
  await until(() => (running.stdout.includes('Ctrl-C stops every node') ? true : undefined), () => `dev never served:\n${running.stdout}\n${running.stderr}`, 60_000);
  const urls = [0, 1, 2].map((i) => `http://127.0.0.1:${basePort + i}`);
  for (const [i, url] of urls.entries()) {
    expect(running.stdout).toContain(`dev-${i + 1}  ${url}  gossip 127.0.0.1:${gossipBasePort + i}  data ${join(tmp, `dev-${i + 1}`)}`);
  }
  expect(running.stdout).toContain(`curl -X PUT --data 'hello' ${urls[0]}/v1/kv/greeting`);
  expect(running.stdout).toContain(`hearsay status --node ${urls[0]}`);

  expect((await fetch(`${urls[0]}/v1/kv/greeting`, { method: 'PUT', body: 'hello' })).status).toBe(204);
  expect(await (await fetch(`${urls[2]}/v1/kv/greeting`)).text()).toBe('hello');

  const status = await runCli(['status', '--node', urls[1]!]);
  expect(status.code, status.stderr).toBe(0);
  expect(status.stdout).toContain('members (3):');
  for (const name of ['dev-1', 'dev-2 (self)', 'dev-3']) expect(status.stdout).toMatch(new RegExp(`${name.replace(/[()]/g, '\\$&')} +alive/serving .* 256 `));
  await stat(join(tmp, 'dev-1', 'store'));

  // Every local user can read a process's command line (ps, /proc/PID/cmdline); only its user, its environment.
  const children = await childrenOf(running.child.pid!);
  expect(children).toHaveLength(3);
  const keys = new Set<string>();
  for (const pid of children) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    expect(argv).toContain('start');
    const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
    const key = environ.find((entry) => entry.startsWith('HEARSAY_CLUSTER_KEY='))?.slice('HEARSAY_CLUSTER_KEY='.length);
    expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    keys.add(key!);
    expect(argv.join(' ')).not.toContain(key!);
    expect(argv).not.toContain('--cluster-key');
  }
  expect(keys.size).toBe(1);
  expect(await readFile(`/proc/${running.child.pid}/cmdline`, 'utf8')).not.toContain([...keys][0]);

  running.child.kill('SIGINT');
  expect(await running.exitCode()).toBe(0);
  expect(running.stdout).toContain('dev cluster stopped\n');
  for (const i of [1, 2, 3]) expect(running.stdout).toContain(`dev-${i} | INFO  store closed; node stopped`);
}, 90_000);

/** The pids whose parent is `pid` (Linux /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Fields after the command (which may hold spaces and parentheses): state, then the parent pid.
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent === pid) found.push(Number(name));
  }
  return found;
}
