/**
 * The client commands (get, put, del, status, repair) run in-process with
 * captured streams against a real node started in this process (real HTTP,
 * classic-level in a temp dir). The process-level behaviour of `hearsay`
 * (start, signals, start failures) is in /test/cli-e2e.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HearsayClient } from '@hearsay/client';
import { runCli, startNode, type CliIo, type RunningNode } from '../src/index.ts';

let dataDir: string;
let node: RunningNode;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'hearsay-commands-'));
  node = await startNode({
    dataDir,
    host: '127.0.0.1',
    httpPort: 0,
    gossipPort: 7946,
    seeds: [],
    replicationFactor: 3,
    logger: pino({ level: 'silent' }),
  });
});

afterAll(async () => {
  await node.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Runs the CLI in this process and captures what it writes. */
async function cli(argv: string[], stdin: Uint8Array | string = ''): Promise<{ code: number; stdout: string; stderr: string; bytes: Buffer }> {
  const out: Buffer[] = [];
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (chunk) => (out.push(Buffer.from(chunk)), true) },
    stderr: { write: (chunk) => ((stderr += Buffer.from(chunk).toString()), true) },
    stdin: Readable.from([Buffer.from(stdin)]),
  };
  const code = await runCli(argv, io);
  const bytes = Buffer.concat(out);
  return { code, stdout: bytes.toString(), stderr, bytes };
}

describe('client commands against a running node', () => {
  it('put (argument), get, del, and get of a missing key', async () => {
    const put = await cli(['put', 'cli/greeting', 'hello, world', '--node', node.httpUrl]);
    expect(put).toMatchObject({ code: 0, stderr: '' });
    expect(put.stdout).toMatch(/^".+"\n$/);
    const head = await new HearsayClient({ baseUrl: node.httpUrl }).head('cli/greeting');
    expect(put.stdout).toBe(`${head?.etag}\n`);
    expect(head?.contentType).toBe('text/plain; charset=utf-8');

    const get = await cli(['get', 'cli/greeting', '--node', node.httpUrl, '--consistency', 'one']);
    expect(get).toMatchObject({ code: 0, stdout: 'hello, world', stderr: '' });

    expect(await cli(['del', 'cli/greeting', '--node', node.httpUrl])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const missing = await cli(['get', 'cli/greeting', '--node', node.httpUrl]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('hearsay: key "cli/greeting" not found [NOT_FOUND]\n');
  });

  it('put reads binary standard input when VALUE is left out, with --content-type', async () => {
    const binary = Buffer.from([0, 1, 2, 254, 255, 10, 13]);
    expect((await cli(['put', 'cli/binary', '--node', node.httpUrl], binary)).code).toBe(0);
    const back = await cli(['get', 'cli/binary', '--node', node.httpUrl]);
    expect(back.bytes.equals(binary)).toBe(true);
    const client = new HearsayClient({ baseUrl: node.httpUrl });
    expect((await client.head('cli/binary'))?.contentType).toBe('application/octet-stream');

    expect((await cli(['put', 'cli/json', '--content-type', 'application/json', '--node', node.httpUrl], '{"a":1}')).code).toBe(0);
    expect(await client.get('cli/json')).toMatchObject({ contentType: 'application/json' });
  });

  it('passes the server error code through to stderr', async () => {
    const huge = 'x'.repeat(1024 * 1024 + 1);
    const result = await cli(['put', 'too-big', huge, '--node', node.httpUrl]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\[VALUE_TOO_LARGE\]\n$/);
  });

  it('status shows the node serving and itself as the one member', async () => {
    const table = await cli(['status', '--node', node.httpUrl]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`node ${node.nodeId} at ${node.httpUrl}: serving`);
    expect(table.stdout).toMatch(new RegExp(`^${node.nodeId} \\(self\\) +alive +${node.httpUrl}`, 'm'));
    const json = await cli(['status', '--node', node.httpUrl, '--json']);
    const parsed = JSON.parse(json.stdout) as { health: { ok: boolean }; cluster: { self: string; members: unknown[] } };
    expect(parsed.health.ok).toBe(true);
    expect(parsed.cluster.self).toBe(node.nodeId);
    expect(parsed.cluster.members).toHaveLength(1);
  });

  it('boolean flags read their HEARSAY_ variable; 0/false/no/off turn them off', async () => {
    process.env['HEARSAY_JSON'] = '1';
    try {
      expect(JSON.parse((await cli(['status', '--node', node.httpUrl])).stdout)).toMatchObject({ health: { ok: true } });
      process.env['HEARSAY_JSON'] = 'false';
      expect((await cli(['status', '--node', node.httpUrl])).stdout).toContain(`node ${node.nodeId} at ${node.httpUrl}: serving`);
    } finally {
      delete process.env['HEARSAY_JSON'];
    }
  });

  it('repair on a single node is in sync: exit 0, summary, and NDJSON with --json', async () => {
    const human = await cli(['repair', '--node', node.httpUrl]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^repair: in sync\n {2}ranges compared {2}\d+\n/);
    const json = await cli(['repair', '--node', node.httpUrl, '--json']);
    expect(json.code).toBe(0);
    const lines = json.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; inSync?: boolean });
    expect(lines.at(-1)).toMatchObject({ type: 'summary', inSync: true });
  });
});
