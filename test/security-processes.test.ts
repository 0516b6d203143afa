/**
 * Secure by default, as a user runs `hearsay start` (real processes on
 * loopback): a node with seeds and no cluster key refuses to start, so does
 * a data dir whose saved ring lists other members, secret
 * files open to others are refused, a keyless single node has no internode
 * API and nobody can join it, `--insecure` is warned about, the data dir is
 * private after start (0700 dirs, 0600 files), and the auth file is used and
 * reloaded by a running node (change, SIGHUP) with tokens from `hearsay token`.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTopologyState, type RingEntry } from '@hearsay/cluster';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freeGossipPort, Proc, runCli, until, type LogLine } from './cluster-processes.ts';

let tmp: string;
const running: Proc[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hearsay-security-'));
});
afterEach(async () => {
  for (const proc of running.splice(0)) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  }
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** No key from the environment of whoever runs the tests. */
const NO_KEY = { HEARSAY_CLUSTER_KEY: undefined, HEARSAY_CLUSTER_KEY_FILE: undefined, HEARSAY_AUTH_FILE: undefined, HEARSAY_TOKEN: undefined };

interface Node {
  readonly proc: Proc;
  readonly url: string;
  readonly gossip: string;
}

/** `hearsay start` on free ports; resolves once it logs its URL. */
async function start(name: string, extra: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Node> {
  const gossipPort = await freeGossipPort();
  const proc = new Proc(['start', '--data-dir', join(tmp, name), '--http-port', '0', '--gossip-port', String(gossipPort), ...extra], { ...NO_KEY, ...env });
  running.push(proc);
  const line = await proc.waitForLog((l) => typeof l['http'] === 'string');
  return { proc, url: line['http'] as string, gossip: `127.0.0.1:${gossipPort}` };
}

const warned = (proc: Proc, text: string): LogLine | undefined => proc.logs().find((l) => l.level === 40 && l.msg.includes(text));

describe('no open internode API', () => {
  it('a node with seeds and no cluster key refuses to start (exit 2), saying how to make one, and creates nothing', async () => {
    const dataDir = join(tmp, 'refused');
    const result = await runCli(['start', '--data-dir', dataDir, '--http-port', '0', '--gossip-port', '0', '--seeds', '127.0.0.1:9'], NO_KEY);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('[CLUSTER_KEY_REQUIRED]');
    expect(result.stderr).toContain('hearsay key generate');
    expect(result.stderr).toContain('--cluster-key-file');
    await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a data dir whose saved ring lists other members refuses to start without a cluster key (exit 2), naming them', async () => {
    const dataDir = join(tmp, 'member');
    await mkdir(dataDir, { mode: 0o700 });
    const entry = (id: string, gossip: string): RingEntry => ({ id, status: 'normal', version: 1, by: id, instance: `${id}-instance`, gossip });
    const ring = new Map([
      ['n1', entry('n1', '127.0.0.1:7946')],
      ['n2', entry('n2', '127.0.0.1:7947')],
      ['n3', { ...entry('n3', '127.0.0.1:7948'), status: 'removed' as const }],
    ]);
    await writeFile(join(dataDir, 'ring.json'), encodeTopologyState({ instance: 'n1-instance', ring }), { mode: 0o600 });
    const result = await runCli(['start', '--data-dir', dataDir, '--node-id', 'n1', '--http-port', '0', '--gossip-port', '0'], NO_KEY);
    // Refused once the node's logger runs: the fatal log line says why, with the code.
    expect(result.code).toBe(2);
    const fatal = result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine).find((l) => l.level === 60);
    expect(fatal, result.stdout).toMatchObject({ code: 'CLUSTER_KEY_REQUIRED' });
    expect(fatal!.msg).toContain('is a member of a cluster with n2 (its ring.json)');
    expect(fatal!.msg).toContain('--cluster-key-file');
    // With --insecure it starts (and says so).
    const insecure = new Proc(['start', '--data-dir', dataDir, '--node-id', 'n1', '--http-port', '0', '--gossip-port', String(await freeGossipPort()), '--insecure'], NO_KEY);
    running.push(insecure);
    await insecure.waitForLog((l) => typeof l['http'] === 'string');
    expect(warned(insecure, '--insecure')).toBeDefined();
  });

  it('refuses a cluster key file or an auth file that others can read (exit 2)', async () => {
    const key = join(tmp, 'open.key');
    await writeFile(key, 'k'.repeat(44));
    await chmod(key, 0o644);
    const withKey = await runCli(['start', '--data-dir', join(tmp, 'open-key'), '--http-port', '0', '--gossip-port', '0', '--cluster-key-file', key], NO_KEY);
    expect(withKey.code).toBe(2);
    expect(withKey.stderr).toContain(`chmod 600 ${key}`);
    const auth = join(tmp, 'open-auth');
    await writeFile(auth, '');
    await chmod(auth, 0o640);
    const withAuth = await runCli(['start', '--data-dir', join(tmp, 'open-auth-node'), '--http-port', '0', '--gossip-port', '0', '--auth-file', auth, '--log-level', 'fatal'], NO_KEY);
    expect(withAuth.code).toBe(2);
  });

  it('a single node without a key has no internode API, and no node can join it; --insecure is warned about and open', async () => {
    const alone = await start('alone', ['--log-level', 'info']);
    for (const path of ['/internal/write', '/internal/scan', '/internal/repair']) {
      const response = await fetch(`${alone.url}${path}`, { method: 'POST', body: new Uint8Array([0x80]), headers: { 'content-type': 'application/msgpack' } });
      expect(response.status, path).toBe(404);
      await response.arrayBuffer();
    }
    const health = (await (await fetch(`${alone.url}/v1/health`)).json()) as Record<string, unknown>;
    expect(health['security']).toEqual({ clientAuth: 'none', tls: false, internode: 'closed' });
    expect(warned(alone.proc, 'no --auth-file')).toBeDefined();

    // A keyless node that tries to join it: its gossip goes unanswered.
    const joiner = await start('joiner', ['--seeds', alone.gossip, '--insecure', '--log-level', 'debug', '--gossip-push-pull-interval-ms', '200']);
    expect(warned(joiner.proc, '--insecure')).toBeDefined();
    await joiner.proc.waitForLog((l) => l.msg.includes('push-pull failed'));
    const view = (await (await fetch(`${alone.url}/v1/cluster`)).json()) as { members: Array<{ id: string }> };
    expect(view.members).toHaveLength(1);
    expect((await fetch(`${joiner.url}/v1/health`)).status).toBe(503);
    // --insecure: its internode API answers anyone (a malformed body gets 400, not 401 or 404).
    const open = await fetch(`${joiner.url}/internal/scan`, { method: 'POST', body: new Uint8Array([0xc1]), headers: { 'content-type': 'application/msgpack' } });
    expect(open.status).toBe(400);
    const joinerHealth = await (await fetch(`${joiner.url}/v1/health`)).json() as { error: { code: string } };
    expect(joinerHealth.error.code).toBe('NOT_SERVING');
  });
});

describe('private data on disk', () => {
  it('after start every file the node made is 0600 and every dir 0700; an open data dir is made private', async () => {
    const dataDir = join(tmp, 'modes');
    await mkdir(dataDir, { mode: 0o755 });
    await chmod(dataDir, 0o755);
    const key = join(tmp, 'modes.key');
    expect((await runCli(['key', 'generate', '--out', key])).code).toBe(0);
    const node = await start('modes', ['--cluster-key-file', key]);
    expect(warned(node.proc, 'made it private')).toMatchObject({ fromMode: '0755', toMode: '0700' });
    for (let i = 0; i < 50; i++) expect((await fetch(`${node.url}/v1/kv/m/${i}`, { method: 'PUT', body: 'x'.repeat(1000) })).status).toBe(204);
    const check = async (): Promise<string[]> => {
      const open: string[] = [];
      const visit = async (path: string): Promise<void> => {
        const info = await stat(path);
        const want = info.isDirectory() ? 0o700 : 0o600;
        if ((info.mode & 0o777) !== want) open.push(`${path} ${(info.mode & 0o777).toString(8)}`);
        if (info.isDirectory()) for (const name of await readdir(path)) await visit(join(path, name));
      };
      await visit(dataDir);
      return open;
    };
    expect(await check()).toEqual([]);
    node.proc.child.kill('SIGTERM');
    expect(await node.proc.exitCode()).toBe(0);
    const names = await readdir(join(dataDir, 'store'));
    expect(names.length).toBeGreaterThan(2);
    expect(await check()).toEqual([]);
  });
});

describe('an auth file on a running node', () => {
  it('serves only with a token, picks up tokens made and revoked with hearsay token, and reloads on SIGHUP', async () => {
    const authFile = join(tmp, 'tokens');
    const admin = await runCli(['token', 'create', '--scope', 'admin', '--id', 'ops', '--auth-file', authFile]);
    expect(admin.code, admin.stderr).toBe(0);
    const adminToken = admin.stdout.trim();
    const node = await start('authed', [], { HEARSAY_AUTH_FILE: authFile });
    const as = (token: string): NodeJS.ProcessEnv => ({ ...NO_KEY, HEARSAY_NODE: node.url, HEARSAY_TOKEN: token });

    expect((await fetch(`${node.url}/v1/kv/a`)).status).toBe(401);
    expect((await fetch(`${node.url}/v1/health`)).status).toBe(200);
    expect((await runCli(['put', 'users/1', 'ada'], as(adminToken))).code).toBe(0);
    const bearer = (token: string): RequestInit => ({ headers: { authorization: `Bearer ${token}` } });

    // A token made while the node runs works once the node has seen the file change.
    const made = await runCli(['token', 'create', '--scope', 'read', '--prefix', 'users/', '--id', 'reader', '--auth-file', authFile]);
    const reader = made.stdout.trim();
    await until(async () => {
      const response = await fetch(`${node.url}/v1/kv/users/1`, bearer(reader));
      await response.arrayBuffer();
      return response.status === 200 ? true : undefined;
    }, () => `the new token never worked:\n${node.proc.stdout}`);
    expect((await runCli(['get', 'users/1'], as(reader))).stdout).toBe('ada');
    expect(node.proc.logs().find((l) => l.msg.includes('auth file reloaded'))).toMatchObject({ added: ['reader'] });
    const forbidden = await fetch(`${node.url}/v1/kv/users/2`, { ...bearer(reader), method: 'PUT', body: 'x' });
    expect(forbidden.status).toBe(403);

    // SIGHUP reloads (and does not end the node).
    const reloadsBefore = node.proc.logs().filter((l) => l.msg.includes('auth file reloaded (SIGHUP)')).length;
    node.proc.child.kill('SIGHUP');
    await node.proc.waitForLog((l) => l.msg.includes('auth file reloaded (SIGHUP)') && node.proc.logs().filter((x) => x.msg.includes('auth file reloaded (SIGHUP)')).length > reloadsBefore);
    expect(node.proc.child.exitCode).toBeNull();

    // Revoked: refused from the next reload on.
    expect((await runCli(['token', 'revoke', 'reader', '--auth-file', authFile])).code).toBe(0);
    await until(async () => {
      const response = await fetch(`${node.url}/v1/kv/users/1`, bearer(reader));
      await response.arrayBuffer();
      return response.status === 401 ? true : undefined;
    }, () => 'the revoked token still works');
    expect(await (await fetch(`${node.url}/v1/kv/users/1`, bearer(adminToken))).text()).toBe('ada');
  });
});
