/**
 * How long a `hearsay` command takes, start to exit: the installed bin (the
 * packed packages installed with npm, plain Node) against the way a clone of
 * the repo runs it (`npx -y pnpm@12 hearsay`, and `node --import tsx` on the
 * sources without pnpm), in the same run, with hyperfine.
 *
 *   pnpm bench:cli [--runs 20]
 *
 * Needs hyperfine (`apt-get install hyperfine`). Builds and packs the
 * packages, installs them into a temporary project, starts one node from the
 * installed bin for `get` to read from, and prints a table: mean and σ per
 * command, and each way's mean over the installed bin's.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
const runs = Number(args.runs);
if (!Number.isInteger(runs) || runs < 2) throw new Error('--runs must be a whole number of at least 2');

interface HyperfineResult {
  readonly command: string;
  readonly mean: number;
  readonly stddev: number;
}

const tmp = await mkdtemp(join(tmpdir(), 'hearsay-bench-cli-'));
try {
  console.log('packing and installing the packages ...');
  const packs = join(tmp, 'packs');
  await run('npx', ['-y', 'pnpm@12', '--filter', './packages/*', 'pack', '--pack-destination', packs], { cwd: ROOT, maxBuffer: 16 << 20 });
  const app = join(tmp, 'app');
  await run('mkdir', ['-p', app]);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'bench-cli', private: true, type: 'module' }));
  const tarballs = (await readdir(packs)).map((name) => join(packs, name));
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel', 'error', ...tarballs], { cwd: app, maxBuffer: 16 << 20 });
  const bin = join(app, 'node_modules/.bin/hearsay');

  const node = spawn(bin, ['start', '--data-dir', join(tmp, 'data'), '--http-port', '0', '--gossip-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    node.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"http":"([^"]+)"/.exec(output);
      if (match !== null) resolve(match[1]!);
    });
    node.once('exit', (code) => reject(new Error(`the node exited with ${code}:\n${output}`)));
  });
  node.stdout.resume();
  await run(bin, ['put', 'greeting', 'hello', '--node', url]);

  const ways: ReadonlyArray<readonly [name: string, prefix: string, cwd: string]> = [
    ['installed bin (plain node)', bin, app],
    ['node --import tsx, sources', `node --conditions=@hearsay/source --import tsx ${join(ROOT, 'packages/cli/src/bin.ts')}`, ROOT],
    ['npx -y pnpm@12 hearsay', 'npx -y pnpm@12 hearsay', ROOT],
  ];
  const commands: ReadonlyArray<readonly [name: string, args: string]> = [
    ['--help', '--help'],
    ['get', `get greeting --node ${url}`],
  ];
  const rows: string[] = [];
  for (const [commandName, args] of commands) {
    const export_ = join(tmp, `${commandName.replace(/\W/g, '')}.json`);
    const hyperfineArgs = ['--warmup', '2', '--runs', String(runs), '--export-json', export_, '--style', 'basic'];
    for (const [name, prefix] of ways) hyperfineArgs.push('--command-name', name, `cd ${ways.find((w) => w[0] === name)![2]} && ${prefix} ${args}`);
    console.log(`hyperfine: hearsay ${commandName} ...`);
    await run('hyperfine', hyperfineArgs, { maxBuffer: 16 << 20 });
    const results = (JSON.parse(await readFile(export_, 'utf8')) as { results: HyperfineResult[] }).results;
    const installed = results[0]!;
    for (const result of results) {
      rows.push(
        `| \`hearsay ${commandName}\` | ${result.command} | ${(result.mean * 1000).toFixed(0)} ± ${(result.stddev * 1000).toFixed(0)} ms | ${(result.mean / installed.mean).toFixed(2)}x |`,
      );
    }
  }
  node.kill('SIGTERM');
  await new Promise((resolve) => node.once('exit', resolve));
  console.log(`\n${runs} runs each after 2 warm-ups; ratio = this way's mean over the installed bin's.\n`);
  console.log('| command | way | wall time (mean ± σ) | vs installed |');
  console.log('| --- | --- | ---: | ---: |');
  for (const row of rows) console.log(row);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
