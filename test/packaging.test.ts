/**
 * Hearsay as a user outside this repo gets it: every package packed with
 * `pnpm pack` (which builds dist/ first), the tarballs installed with npm into
 * a new project in the temp dir — no workspace, no tsx, no TypeScript loader —
 * and used there: the @hearsay/storage README example as plain JavaScript, the
 * installed `hearsay` bin serving the packed @hearsay/client and stopping on
 * SIGTERM, and strict TypeScript consumers that read only our declarations.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from './cluster-processes.ts';
import { ROOT, until, withDeadline, type LogLine } from './support/processes.ts';

const run = promisify(execFile);
const WAITS = { deadlineMs: 60_000, pollMs: 100 };
const PACKAGES = ['cli', 'client', 'clock', 'cluster', 'gossip', 'http', 'repair', 'service', 'sim', 'storage'];
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

let tmp: string;
let app: string;
let installOutput: string;

/** The first ```js block of a package README: the example that must run as written. */
async function readmeExample(pkg: string): Promise<string> {
  const readme = await readFile(join(ROOT, 'packages', pkg, 'README.md'), 'utf8');
  const match = /```js\n([\s\S]*?)```/.exec(readme);
  if (match === null) throw new Error(`packages/${pkg}/README.md has no \`\`\`js example`);
  return match[1]!;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hearsay-packaging-'));
  const packs = join(tmp, 'packs');
  await run('npx', ['-y', 'pnpm@12', '--filter', './packages/*', 'pack', '--pack-destination', packs], { cwd: ROOT, maxBuffer: 16 << 20 });
  const tarballs = (await readdir(packs)).filter((name) => name.endsWith('.tgz')).map((name) => join(packs, name));
  expect(tarballs).toHaveLength(PACKAGES.length);

  app = join(tmp, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'hearsay-consumer', private: true, type: 'module' }));
  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel', 'warn', ...tarballs, 'level@^10', '@types/node@20'], { cwd: app, maxBuffer: 16 << 20 });
  installOutput = install.stdout + install.stderr;
}, 300_000);

afterAll(async () => {
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('the packed packages installed with npm outside the workspace', () => {
  it('ship dist, README and LICENSE only, with real versions for workspace ranges', async () => {
    for (const pkg of PACKAGES) {
      const dir = join(app, 'node_modules/@hearsay', pkg);
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
        exports: Record<string, unknown>;
        dependencies?: Record<string, string>;
      };
      expect(JSON.stringify(manifest.exports)).not.toContain('src/');
      for (const [name, range] of Object.entries(manifest.dependencies ?? {})) {
        expect(range, `${pkg} -> ${name}`).not.toContain('workspace:');
      }
      const entries = (await readdir(dir)).filter((entry) => entry !== 'node_modules').sort();
      expect(entries).toEqual(pkg === 'cli' ? ['LICENSE', 'README.md', 'bin', 'dist', 'package.json'] : ['LICENSE', 'README.md', 'dist', 'package.json']);
      const dist = await readdir(join(dir, 'dist'), { recursive: true });
      expect(dist.filter((file) => file.endsWith('.test.js') || file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
      expect(dist).toContain('index.js');
      expect(dist).toContain('index.d.ts');
    }
  });

  it('install without engine or deprecation warnings on this Node', () => {
    expect(installOutput).not.toMatch(/EBADENGINE|deprecated|Unsupported engine/i);
    // npm 11 lists dependencies whose install scripts its allowScripts policy has not approved: classic-level
    // (under level) and msgpackr-extract (optional, under msgpackr). Both ship prebuilt binaries and work
    // without their scripts. Nothing else may warn.
    const warnings = installOutput.split('\n').filter((line) => line.startsWith('npm warn') && !line.startsWith('npm warn install-scripts'));
    expect(warnings).toEqual([]);
  });

  // The README examples that need no running node, and a line each prints when it worked.
  const examples: ReadonlyArray<readonly [pkg: string, printed: string]> = [
    ['storage', '{"name":"Ada"} application/json'],
    ['sim', 'a got "echo hello" from b'],
    ['gossip', "a knows b's http address: http://127.0.0.1:7001"],
    ['repair', 'true true'],
    ['http', '200 hello'],
    ['service', 'PRECONDITION_FAILED 412'],
    ['clock', '3 beats'],
    ['cluster', '204 200 hello'],
  ];
  it.each(examples)('runs the @hearsay/%s README example as plain JavaScript on node', async (pkg, printed) => {
    await writeFile(join(app, `${pkg}-example.mjs`), await readmeExample(pkg));
    const { stdout } = await run(process.execPath, [`${pkg}-example.mjs`], { cwd: app, timeout: 60_000 });
    expect(stdout).toContain(printed);
  });

  it('starts the installed hearsay bin, serves the packed client, and stops on SIGTERM with exit 0 and the store closed', async () => {
    const [httpPort, gossipPort] = await freePorts(2, true);
    const bin = join(app, 'node_modules/.bin/hearsay');
    const node = spawn(bin, ['start', '--data-dir', join(tmp, 'node-data'), '--http-port', String(httpPort), '--gossip-port', String(gossipPort)], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    node.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    node.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => node.once('exit', (code) => resolve(code)));
    const logs = (): LogLine[] => output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as LogLine);
    try {
      await until(() => logs().find((line) => line.msg.includes(' serving ')), () => `hearsay did not serve:\n${output}`, WAITS);

      await writeFile(join(app, 'client-example.mjs'), await readmeExample('client'));
      const example = await run(process.execPath, ['client-example.mjs'], { cwd: app, env: { ...process.env, HEARSAY_URL: `http://127.0.0.1:${httpPort}` } });
      expect(example.stdout).toContain('Ada');

      node.kill('SIGTERM');
      expect(await withDeadline(exited, () => `hearsay did not exit:\n${output}`, WAITS.deadlineMs)).toBe(0);
      expect(logs().map((line) => line.msg)).toContain('store closed; node stopped');
    } finally {
      node.kill('SIGKILL');
    }
  });

  it('prints its help and version from the installed bin', async () => {
    const { stdout } = await run(join(app, 'node_modules/.bin/hearsay'), ['--version'], { cwd: app });
    const cli = JSON.parse(await readFile(join(ROOT, 'packages/cli/package.json'), 'utf8')) as { version: string };
    expect(stdout.trim()).toBe(cli.version);
  });

  const consumer = `
import { openStore, type StoredRecord } from '@hearsay/storage';
import { HearsayClient, isHearsayError, type KvEntry } from '@hearsay/client';

export async function useStore(): Promise<number> {
  const store = await openStore({ location: './data/typed' });
  const record: StoredRecord = await store.put('k', 'v');
  await store.close();
  return record.version.ms;
}

export async function useClient(): Promise<string | undefined> {
  const client = new HearsayClient({ baseUrl: 'http://127.0.0.1:7000' });
  try {
    const entry: KvEntry | undefined = await client.get('k');
    return entry?.text();
  } catch (error) {
    if (isHearsayError(error, 'NETWORK_ERROR')) return undefined;
    throw error;
  }
}
`;
  const browser = `
import { HearsayClient } from '@hearsay/client';

export async function inTheBrowser(): Promise<string | undefined> {
  const client = new HearsayClient({ baseUrl: location.origin });
  await client.put('greeting', 'hello', { contentType: 'text/plain' });
  return (await client.get('greeting'))?.text();
}
`;
  const strict = { strict: true, skipLibCheck: false, noEmit: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022' };

  it('type-checks a strict TypeScript consumer of storage and client (types: node, skipLibCheck: false)', async () => {
    await mkdir(join(app, 'typed-node'), { recursive: true });
    await writeFile(join(app, 'typed-node/consumer.ts'), consumer);
    await writeFile(join(app, 'typed-node/tsconfig.json'), JSON.stringify({ compilerOptions: { ...strict, lib: ['ES2022'], types: ['node'] }, files: ['consumer.ts'] }));
    await expect(run(process.execPath, [TSC, '-p', 'typed-node/tsconfig.json'], { cwd: app })).resolves.toBeDefined();
  });

  it('type-checks a browser consumer of the client (lib: DOM, no Node types, skipLibCheck: false)', async () => {
    await mkdir(join(app, 'typed-dom'), { recursive: true });
    await writeFile(join(app, 'typed-dom/consumer.ts'), browser);
    await writeFile(join(app, 'typed-dom/tsconfig.json'), JSON.stringify({ compilerOptions: { ...strict, lib: ['ES2022', 'DOM'], types: [] }, files: ['consumer.ts'] }));
    await expect(run(process.execPath, [TSC, '-p', 'typed-dom/tsconfig.json'], { cwd: app })).resolves.toBeDefined();
  });
});
