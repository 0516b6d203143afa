import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HearsayError } from '@hearsay/client';
import { createProgram, envVarOf, runCli, type CliIo } from '../src/index.ts';
import { ranges, renderStatus } from '../src/commands/status.ts';
import { changeOf, ringStatus } from '../src/commands/membership.ts';
import { planDevCluster } from '../src/commands/dev.ts';
import { tuningOf } from '../src/commands/start-flags.ts';
import { formatBytes, renderSummary } from '../src/commands/repair.ts';
import { parseNodeUrl, parsePort, parseSeeds } from '../src/options.ts';
import { ProgressBar, renderBar } from '../src/progress-bar.ts';

/** Runs the CLI in-process and captures what it writes. */
export async function run(argv: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (chunk) => ((stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()), true) },
    stderr: { write: (chunk) => ((stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()), true) },
    stdin: Readable.from([Buffer.from(stdin)]),
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

const COMMANDS = ['start', 'dev', 'get', 'put', 'del', 'status', 'repair', 'token', 'key'];
const savedEnv = { ...process.env };

afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
});

describe('hearsay --help', () => {
  it('lists every command', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    for (const command of COMMANDS) expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it.each(COMMANDS)('%s --help shows usage and each flag with its HEARSAY_ variable', async (name) => {
    const { code, stdout, stderr } = await run([name, '--help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toContain(`Usage: hearsay ${name}`);
    const command = createProgram({ io: { stdout: { write: () => true }, stderr: { write: () => true }, stdin: Readable.from([]) }, exitCode: 0 }).commands.find(
      (c) => c.name() === name,
    );
    const flat = stdout.replace(/\s+/g, ' ');
    for (const option of command?.options ?? []) {
      expect(flat).toContain(option.long);
      expect(flat).toContain(`env: ${envVarOf(option.long ?? '')}`);
    }
  });

  it('matches the README: every command and flag of the program is documented there, with its variable', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const program = createProgram({ io: { stdout: { write: () => true }, stderr: { write: () => true }, stdin: Readable.from([]) }, exitCode: 0 });
    for (const command of program.commands.filter((c) => c.name() !== 'help')) {
      expect(readme).toContain(`hearsay ${command.name()}`);
      for (const option of command.options) {
        expect(readme, `${command.name()} ${option.long}`).toContain(option.long);
        expect(readme, `${command.name()} ${option.long}`).toContain(envVarOf(option.long ?? ''));
      }
    }
  });

  it('answers a usage error with exit 2 and a hint', async () => {
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const badConsistency = await run(['get', 'k', '--consistency', 'most']);
    expect(badConsistency.code).toBe(2);
    expect(badConsistency.stderr).toContain('one, quorum, all');
    const missing = await run(['put']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'key'");
  });
});

describe('flags from HEARSAY_<FLAG> variables', () => {
  it('names the variable after the long flag', () => {
    expect(envVarOf('--http-port')).toBe('HEARSAY_HTTP_PORT');
    expect(envVarOf('--data-dir')).toBe('HEARSAY_DATA_DIR');
    expect(envVarOf('--node')).toBe('HEARSAY_NODE');
  });

  it('reads --node from HEARSAY_NODE, and a flag wins over the variable', async () => {
    const port = await closedPort();
    process.env['HEARSAY_NODE'] = `http://127.0.0.1:${port}`;
    const fromEnv = await run(['get', 'k']);
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.stderr).toContain(`cannot reach http://127.0.0.1:${port}`);
    expect(fromEnv.stderr).toContain('[NETWORK_ERROR]');
    const other = await closedPort();
    const fromFlag = await run(['get', 'k', '--node', `http://127.0.0.1:${other}`]);
    expect(fromFlag.stderr).toContain(`cannot reach http://127.0.0.1:${other}`);
  });

  it('validates values that come from variables like flags', async () => {
    process.env['HEARSAY_CONSISTENCY'] = 'most';
    const result = await run(['get', 'k']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('one, quorum, all');
    process.env['HEARSAY_CONSISTENCY'] = 'one';
    process.env['HEARSAY_HTTP_PORT'] = 'seventy';
    const start = await run(['start']);
    expect(start.code).toBe(2);
    expect(start.stderr).toContain('must be a port number');
  });
});

describe('option parsers', () => {
  it.each([
    ['7000', 7000],
    ['0', 0],
    ['65535', 65535],
  ])('port %s', (text, port) => expect(parsePort(text)).toBe(port));

  it.each(['-1', '65536', '7e3', 'x', ''])('rejects port %j', (text) => expect(() => parsePort(text)).toThrow());

  it('parses seeds and node URLs', () => {
    expect(parseSeeds('a:1, b.example:7946,')).toEqual(['a:1', 'b.example:7946']);
    expect(() => parseSeeds('nohost')).toThrow('not host:port');
    expect(parseNodeUrl('http://h:1/')).toBe('http://h:1');
    expect(() => parseNodeUrl('h:1')).toThrow('http://');
    expect(() => parseNodeUrl('not a url')).toThrow('URL');
  });
});

describe('output', () => {
  it('renders status with the members table', () => {
    const text = renderStatus(
      'http://127.0.0.1:7000',
      { ok: true },
      {
        self: 'n1',
        members: [
          { id: 'n1', state: 'alive', status: 'serving', http: 'http://127.0.0.1:7000', gossip: '127.0.0.1:7946', incarnation: 0, partitions: [0, 1, 5], keys: 42 },
          { id: 'node-two', state: 'suspect', http: 'http://127.0.0.1:7001', gossip: '', incarnation: 12 },
        ],
      },
    );
    expect(text).toBe(
      [
        'node n1 at http://127.0.0.1:7000: serving',
        '',
        'members (2):',
        'ID         STATE          HTTP                   GOSSIP          PARTITIONS  KEYS  INCARNATION  CLOCK',
        'n1 (self)  alive/serving  http://127.0.0.1:7000  127.0.0.1:7946  3           42    0            -',
        'node-two   suspect        http://127.0.0.1:7001  -               -           -     12           -',
        '',
      ].join('\n'),
    );
    // With clocks measured: each member's offset from the node asked, `!` past the maximum offset, and its own verdict.
    const skewed = renderStatus(
      'http://127.0.0.1:7000',
      { ok: true },
      {
        self: 'n1',
        members: [
          { id: 'n1', state: 'alive', http: 'http://a', gossip: 'a:1', incarnation: 0, clock: { state: 'ok', maxOffsetMs: 500 } },
          { id: 'n2', state: 'alive', http: 'http://b', gossip: 'b:1', incarnation: 0, clockOffsetMs: -12, clockErrorMs: 1 },
          { id: 'n3', state: 'alive', http: 'http://c', gossip: 'c:1', incarnation: 0, clockOffsetMs: 3_600_004, clockErrorMs: 2 },
        ],
      },
    );
    expect(skewed.split('\n').slice(3, 7)).toEqual([
      'ID         STATE  HTTP      GOSSIP  PARTITIONS  KEYS  INCARNATION  CLOCK',
      'n1 (self)  alive  http://a  a:1     -           -     0            ok',
      'n2         alive  http://b  b:1     -           -     0            -12±1 ms',
      'n3         alive  http://c  c:1     -           -     0            +3600004±2 ms !',
    ]);
    expect(skewed).toContain("CLOCK: each member's clock minus this node's, as gossip measured it (! = beyond the maximum offset of 500 ms)");
    const down = renderStatus('http://x', new HearsayError('NOT_SERVING', 'draining', 503), { self: 'n1', members: [] });
    expect(down).toContain('not serving: draining');
  });

  it('renders a join in progress: the joiner joining, the change, and each receiving member\'s partitions by state', () => {
    const view = {
      self: 'n1',
      members: [
        { id: 'n1', state: 'alive', http: 'http://h:1', gossip: 'h:2', incarnation: 0, partitions: [0, 1, 2, 3] },
        { id: 'n4', state: 'joining', ring: 'joining', http: 'http://h:3', gossip: 'h:4', incarnation: 0, partitions: [] },
      ],
      topology: {
        epoch: 'e3',
        ring: [
          { id: 'n1', status: 'normal', version: 1 },
          { id: 'n4', status: 'joining', version: 1 },
        ],
        queued: [{ kind: 'decommission', member: 'n2' }],
        change: { kind: 'join', member: 'n4', key: 'join:n4:1', waitingFor: [], done: 3, total: 6 },
        transfers: [0, 1, 2, 3, 4, 9].map((partition) => ({ partition, to: 'n4', from: ['n1'], state: partition < 3 ? 'done' : partition === 3 ? 'streaming' : 'waiting' })),
      },
    };
    const text = renderStatus('http://h:1', { ok: true }, view as never);
    expect(text).toContain('n4         joining');
    expect(text).toContain('change in progress: join of n4, 3 of 6 partitions streamed\n');
    expect(text).toMatch(/^n4 +3\/6 +3 +4, 9 +0-2 *$/m);
    expect(text).toContain('waiting to start: decommission of n2');
    expect(changeOf(view as never)).toEqual({ kind: 'join', member: 'n4', done: 3, total: 6, waitingFor: [] });
    expect(ringStatus(view as never, 'n4')).toBe('joining');
    expect(ringStatus(view as never, 'n9')).toBeUndefined();
    // Without a topology (a node without membership changes) nothing more is shown.
    expect(renderStatus('http://h:1', { ok: true }, { self: 'n1', members: [] })).not.toContain('change in progress');
  });

  it.each([
    { partitions: [], text: '' },
    { partitions: [5], text: '5' },
    { partitions: [3, 0, 1, 2, 7, 9, 10], text: '0-3, 7, 9-10' },
    { partitions: Array.from({ length: 40 }, (_, i) => i * 2), text: `${Array.from({ length: 40 }, (_, i) => i * 2).join(', ').slice(0, 57)}...` },
  ])('writes partitions $partitions as ranges', ({ partitions, text }) => expect(ranges(partitions)).toBe(text));

  it('renders the repair summary', () => {
    const summary = { type: 'summary' as const, inSync: false, rangesCompared: 4, keysSent: 3, keysReceived: 1, bytesSent: 2048, bytesReceived: 10, durationMs: 1234 };
    expect(renderSummary(summary)).toBe(
      ['repair: NOT in sync', '  ranges compared  4', '  keys sent        3 (2.0 KiB)', '  keys received    1 (10 B)', '  time             1.23 s', ''].join('\n'),
    );
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
    // The cluster's summary carries partitions, hand-over of foreign data and purged tombstones.
    const cluster = renderSummary({ ...summary, inSync: true, partitions: 4, foreignPartitions: 2, foreignKeysSent: 7, tombstonesPurged: 3 });
    expect(cluster).toContain('ranges compared  4 (4 partitions)');
    expect(cluster).toContain('handed over      7 keys of 2 partitions this node does not replicate');
    expect(cluster).toContain('tombstones purged 3');
  });

  it('draws the progress bar in place, at most every 100 ms, and clears it', () => {
    expect(renderBar('repair', 5, 10, 1500, 80)).toBe(`repair [${'#'.repeat(20)}${'.'.repeat(20)}] 5/10 1.5s`);
    expect(renderBar('repair', 0, 0, 0, 80)).toContain(`[${'.'.repeat(40)}] 0/0`);
    const writes: string[] = [];
    const bar = new ProgressBar({ write: (chunk) => (writes.push(String(chunk)), true), columns: 80 }, 'repair', 0);
    bar.update(1, 10, 0);
    bar.update(2, 10, 50);
    bar.update(3, 10, 150);
    bar.update(10, 10, 160);
    bar.clear();
    expect(writes).toHaveLength(4);
    expect(writes[0]).toMatch(/^\r.*1\/10/);
    expect(writes[2]).toMatch(/^\r.*10\/10/);
    expect(writes[3]).toBe('\r\x1b[K');
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

describe('cluster wiring', () => {
  const devFlags = { nodes: 3, basePort: 7000, dataDir: '/tmp/d', replicationFactor: 3, logLevel: 'info' };

  it('plans a dev cluster: consecutive ports, gossip 946 above HTTP by default, every other node a seed', () => {
    const plans = planDevCluster(devFlags);
    expect(plans.map((p) => [p.name, p.url, p.gossipPort, p.dataDir])).toEqual([
      ['dev-1', 'http://127.0.0.1:7000', 7946, '/tmp/d/dev-1'],
      ['dev-2', 'http://127.0.0.1:7001', 7947, '/tmp/d/dev-2'],
      ['dev-3', 'http://127.0.0.1:7002', 7948, '/tmp/d/dev-3'],
    ]);
    const args = plans[1]!.args;
    expect(args.slice(0, 3)).toEqual(['start', '--node-id', 'dev-2']);
    expect(args[args.indexOf('--seeds') + 1]).toBe('127.0.0.1:7946,127.0.0.1:7948');
    // The key travels in the environment, never in the arguments: a fresh random one, the same for every node.
    expect(args.join(' ')).not.toContain('key');
    const key = plans[0]!.env['HEARSAY_CLUSTER_KEY'];
    expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(plans.map((p) => p.env['HEARSAY_CLUSTER_KEY'])).toEqual([key, key, key]);
    expect(planDevCluster(devFlags)[0]!.env['HEARSAY_CLUSTER_KEY']).not.toBe(key);
    const given = planDevCluster({ ...devFlags, clusterKey: 'given-key', gossipBasePort: 9000 })[0]!;
    expect(given.env).toEqual({ HEARSAY_CLUSTER_KEY: 'given-key' });
    expect(given.args).not.toContain('given-key');
    expect(given.args).toEqual(expect.arrayContaining(['--gossip-port', '9000']));
    expect(planDevCluster({ ...devFlags, nodes: 1 })[0]!.args).toEqual(expect.arrayContaining(['--seeds', '']));
  });

  it('refuses dev port ranges that overlap or run past 65535', () => {
    expect(() => planDevCluster({ ...devFlags, gossipBasePort: 7001 })).toThrow('overlap');
    expect(() => planDevCluster({ ...devFlags, basePort: 65_534 })).toThrow('65535');
  });

  it('passes only the advanced flags that were given to gossip and the cluster', () => {
    const base = { dataDir: 'd', host: 'h', httpPort: 1, gossipPort: 2, seeds: [], replicationFactor: 3, maxClockOffsetMs: 500, acceptClockAhead: false, logLevel: 'info' as const };
    expect(tuningOf(base)).toEqual({});
    expect(tuningOf({ ...base, gossipProbeIntervalMs: 200, repairIntervalMs: 0, hintWindowMs: 5, advertiseHost: '10.0.0.1' })).toEqual({
      gossip: { probeIntervalMs: 200 },
      config: { repairPartitionIntervalMs: 0, hintWindowMs: 5 },
      advertiseHost: '10.0.0.1',
    });
  });
});
