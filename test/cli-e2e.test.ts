/**
 * The `hearsay` command as a real process: start a node on a free port and a
 * temp data dir, talk to it over real HTTP and through CLI processes, stop it
 * with a signal, restart it on the same data dir. Every wait polls a
 * condition with a deadline; nothing sleeps a fixed time. It talks plain HTTP
 * (fetch) and imports no workspace package: it tests the program as a user
 * runs it. The commands' in-process tests are in packages/cli/test.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess as SupportCliProcess, until as untilWithin, withDeadline as withDeadlineOf, type Waits } from './support/processes.ts';

const WAITS: Waits = { deadlineMs: 20_000, pollMs: 20 };

/** A `hearsay` process with a writable stdin, on this file's deadline. */
class CliProcess extends SupportCliProcess {
  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    super(args, env, { ...WAITS, stdin: 'pipe' });
  }
}

const withDeadline = <T>(promise: Promise<T>, describe: () => string): Promise<T> => withDeadlineOf(promise, describe, WAITS.deadlineMs);

/** Polls `probe` until it returns a value, or fails at the deadline. */
const until = <T>(probe: () => T | undefined | Promise<T | undefined>, describe: () => string): Promise<T> => untilWithin(probe, describe, WAITS);

interface StartedNode {
  readonly process: CliProcess;
  readonly url: string;
  readonly port: number;
  readonly nodeId: string;
}

/** Starts `hearsay start` on a free port (`--http-port 0`) and waits until `/v1/health` says ok. */
async function startNode(dataDir: string, extra: readonly string[] = []): Promise<StartedNode> {
  const node = new CliProcess(['start', '--data-dir', dataDir, '--http-port', '0', '--gossip-port', '0', ...extra]);
  const started = await node.waitForLog((line) => typeof line['http'] === 'string');
  const url = started['http'] as string;
  await until(
    () => fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2_000) }).then((response) => (response.ok ? true : undefined), () => undefined),
    () => `node at ${url} never became healthy`,
  );
  return { process: node, url, port: Number(new URL(url).port), nodeId: started['nodeId'] as string };
}

/** The value of `key` as text, or undefined on 404. */
async function readKey(url: string, key: string): Promise<{ text: string; contentType: string | null } | undefined> {
  const response = await fetch(`${url}/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`);
  if (response.status === 404) return undefined;
  expect(response.status).toBe(200);
  return { text: await response.text(), contentType: response.headers.get('content-type') };
}

describe('hearsay as a process', () => {
  let tmp: string;
  let dataDir: string;
  let node: StartedNode;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'hearsay-cli-e2e-'));
    dataDir = join(tmp, 'node-a');
    node = await startNode(dataDir);
  });

  afterAll(async () => {
    node.process.child.kill('SIGKILL');
    await rm(tmp, { recursive: true, force: true });
  });

  it('logs its node id, data dir and address at startup', () => {
    const started = node.process.logs().find((line) => line['http'] === node.url);
    expect(started).toMatchObject({ dataDir, mode: 'cluster' });
    expect(node.nodeId).toMatch(/^[A-Za-z0-9._:-]+$/);
  });

  it('serves PUT and GET over real HTTP', async () => {
    const key = 'dir/ключ with space';
    const path = `${node.url}/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
    const put = await fetch(path, { method: 'PUT', body: 'hello over http', headers: { 'content-type': 'text/plain' } });
    expect(put.status).toBe(204);
    const etag = put.headers.get('etag');
    expect(etag).toBeTruthy();
    const get = await fetch(path);
    expect(get.status).toBe(200);
    expect(get.headers.get('etag')).toBe(etag);
    expect(get.headers.get('content-type')).toBe('text/plain');
    expect(await get.text()).toBe('hello over http');

    expect((await fetch(`${node.url}/v1/kv/doomed`, { method: 'PUT', body: 'x' })).status).toBe(204);
    expect((await fetch(`${node.url}/v1/kv/doomed`, { method: 'DELETE' })).status).toBe(204);
    expect(await readKey(node.url, 'doomed')).toBeUndefined();
  });

  it('`hearsay put` reads stdin and finds the node from HEARSAY_NODE; `hearsay get` prints the value', async () => {
    const put = new CliProcess(['put', 'piped/value'], { HEARSAY_NODE: node.url, HEARSAY_CONTENT_TYPE: 'application/json' });
    put.child.stdin?.end('{"piped":true}\n');
    expect(await put.exitCode()).toBe(0);
    expect(put.stdout).toMatch(/^".+"\n$/);
    expect(await readKey(node.url, 'piped/value')).toEqual({ text: '{"piped":true}\n', contentType: 'application/json' });

    const get = new CliProcess(['get', 'piped/value', '--node', node.url]);
    const missing = new CliProcess(['get', 'nothing-here', '--node', node.url]);
    const [getCode, missingCode] = await Promise.all([get.exitCode(), missing.exitCode()]);
    expect(getCode).toBe(0);
    expect(get.stdout).toBe('{"piped":true}\n');
    expect(missingCode).toBe(1);
    expect(missing.stderr).toContain('key "nothing-here" not found [NOT_FOUND]');
  });

  it('refuses to start on a taken port, a locked data dir, or a data dir that is a file', async () => {
    const aFile = join(tmp, 'not-a-dir');
    await writeFile(aFile, 'x');
    const portTaken = new CliProcess(['start', '--data-dir', join(tmp, 'node-b'), '--http-port', String(node.port), '--gossip-port', '0']);
    const locked = new CliProcess(['start', '--data-dir', dataDir, '--http-port', '0', '--gossip-port', '0']);
    const fileDir = new CliProcess(['start', '--data-dir', aFile, '--http-port', '0', '--gossip-port', '0']);
    const [portCode, lockedCode, fileCode] = await Promise.all([portTaken.exitCode(), locked.exitCode(), fileDir.exitCode()]);

    expect(portCode).toBe(1);
    expect(portTaken.logs().at(-1)).toMatchObject({ level: 60, code: 'PORT_IN_USE' });
    expect(portTaken.logs().at(-1)?.msg).toContain(`HTTP port ${node.port} is already in use`);

    expect(lockedCode).toBe(1);
    expect(locked.logs().at(-1)).toMatchObject({ level: 60, code: 'DATA_DIR_LOCKED' });
    expect(locked.logs().at(-1)?.msg).toContain(`data dir ${dataDir} is in use by another process`);

    expect(fileCode).toBe(1);
    expect(fileDir.logs().at(-1)).toMatchObject({ level: 60, code: 'DATA_DIR_UNUSABLE' });
    expect(fileDir.logs().at(-1)?.msg).toContain(`data dir ${aFile} is unusable`);

    // The running node was not disturbed.
    expect((await readKey(node.url, 'piped/value'))?.text).toBe('{"piped":true}\n');
  });

  it('on SIGTERM finishes the request in flight, closes the store and exits 0; a restart has the data and the same id', async () => {
    // A PUT whose body is still on its way when the signal arrives: the
    // `100 Continue` says the node has taken the request in.
    const slow = httpRequest(`${node.url}/v1/kv/in-flight`, {
      method: 'PUT',
      headers: { expect: '100-continue', 'content-type': 'text/plain', 'content-length': '10' },
    });
    const answered = new Promise<IncomingMessage>((resolve, reject) => slow.on('response', resolve).on('error', reject));
    await withDeadline(new Promise((resolve) => slow.on('continue', resolve)), () => 'no 100 Continue');
    slow.write('first');

    node.process.child.kill('SIGTERM');
    const shutdown = await node.process.waitForLog((line) => line.msg.startsWith('shutting down'));
    expect(shutdown['inFlight']).toBe(1);
    slow.end('-half');
    const response = await withDeadline(answered, () => 'the in-flight PUT got no answer');
    expect(response.statusCode).toBe(204);
    expect(response.headers['connection']).toBe('close');
    response.resume();

    expect(await node.process.exitCode()).toBe(0);
    const messages = node.process.logs().map((line) => line.msg);
    expect(messages.at(-2)).toContain('node stopped');
    expect(messages.at(-1)).toBe('exiting with status 0');

    const restarted = await startNode(dataDir);
    try {
      expect(restarted.nodeId).toBe(node.nodeId);
      const cluster = (await (await fetch(`${restarted.url}/v1/cluster`)).json()) as { self: string };
      expect(cluster.self).toBe(node.nodeId);
      expect((await readKey(restarted.url, 'in-flight'))?.text).toBe('first-half');
      expect((await readKey(restarted.url, 'piped/value'))?.text).toBe('{"piped":true}\n');
      expect((await readKey(restarted.url, 'dir/ключ with space'))?.text).toBe('hello over http');
      expect(await readKey(restarted.url, 'doomed')).toBeUndefined();
      restarted.process.child.kill('SIGINT');
      expect(await restarted.process.exitCode()).toBe(0);
    } finally {
      restarted.process.child.kill('SIGKILL');
    }
  });
});
