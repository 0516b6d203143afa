/**
 * The package map (package-map.json) is what the code does, what the
 * manifests declare and what docs/architecture.md shows; and the dependency
 * check (.dependency-cruiser.cjs, run by `pnpm test` before vitest) fails on
 * each kind of import it forbids, shown on a small repo built in a temp dir.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageMapJson from '../package-map.json' with { type: 'json' };

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const PACKAGE_MAP: Readonly<Record<string, readonly string[]>> = packageMapJson.packages;
const PACKAGES = Object.keys(PACKAGE_MAP).sort();

interface CruiseModule {
  readonly source: string;
  readonly dependencies: readonly { readonly resolved: string; readonly dependencyTypes: readonly string[] }[];
}
interface CruiseResult {
  readonly modules: readonly CruiseModule[];
}

/** Runs dependency-cruiser in `cwd` with the config there; resolves with its exit code and output. */
function depcruise(cwd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DEPCRUISE, '--config', '.dependency-cruiser.cjs', ...args], { cwd, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** The check as `pnpm test` runs it (exit status and the `error <rule>: <from> → <to>` lines), in `cwd`. */
async function check(cwd: string, paths: readonly string[]): Promise<{ code: number; violations: Map<string, string[]>; output: string }> {
  const { code, stdout, stderr } = await depcruise(cwd, ['--output-type', 'err', ...paths]);
  const violations = new Map<string, string[]>();
  for (const match of stdout.matchAll(/^\s*error ([\w-]+): (.*)$/gm)) {
    violations.set(match[1]!, [...(violations.get(match[1]!) ?? []), match[2]!.trim()]);
  }
  return { code, violations, output: stdout + stderr };
}

/** `@hearsay/<name>` a resolved path goes to, if it is a workspace package reached by name. */
function workspacePackageOf(resolved: string): string | undefined {
  return /node_modules\/@hearsay\/([^/]+)\//.exec(resolved)?.[1];
}

describe('the package map', () => {
  let real: CruiseResult;

  beforeAll(async () => {
    const { stdout, stderr } = await depcruise(ROOT, ['--output-type', 'json', 'packages']);
    try {
      real = JSON.parse(stdout) as CruiseResult;
    } catch {
      throw new Error(`dependency-cruiser gave no report: ${stderr}`);
    }
  });

  it('is exactly what each package imports from its src/ and examples/', () => {
    const used = new Map<string, Set<string>>(PACKAGES.map((p) => [p, new Set<string>()]));
    for (const module of real.modules) {
      const match = /^packages\/([^/]+)\/(src|examples)\//.exec(module.source);
      if (match === null || module.source.endsWith('.test.ts')) continue;
      const from = match[1]!;
      for (const dependency of module.dependencies) {
        const to = workspacePackageOf(dependency.resolved);
        if (to !== undefined && to !== from) used.get(from)?.add(to);
      }
    }
    // A package allowed something it never uses is a map that says more than the code does.
    for (const name of PACKAGES) expect([...(used.get(name) ?? [])].sort(), `@hearsay/${name}`).toEqual([...PACKAGE_MAP[name]!].sort());
    expect(Object.keys(PACKAGE_MAP).sort()).toEqual(PACKAGES);
  });

  it('is what each package.json declares: its workspace dependencies, and none of them as devDependencies', async () => {
    for (const name of PACKAGES) {
      const manifest = JSON.parse(await readFile(join(ROOT, 'packages', name, 'package.json'), 'utf8')) as {
        name: string;
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      expect(manifest.name).toBe(`@hearsay/${name}`);
      const declared = Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@hearsay/')).map((d) => d.slice('@hearsay/'.length));
      expect(declared.sort(), `dependencies of @hearsay/${name}`).toEqual([...PACKAGE_MAP[name]!].sort());
      const devWorkspace = Object.keys(manifest.devDependencies ?? {}).filter((d) => d.startsWith('@hearsay/')).map((d) => d.slice('@hearsay/'.length));
      for (const dev of devWorkspace) expect(packageMapJson.testKits, `devDependency @hearsay/${dev} of @hearsay/${name}`).toContain(dev);
    }
  });

  it('is what each package builds against: the project references of its tsconfig.build.json', async () => {
    for (const name of PACKAGES) {
      const build = JSON.parse(await readFile(join(ROOT, 'packages', name, 'tsconfig.build.json'), 'utf8')) as { references?: { path: string }[] };
      const references = (build.references ?? []).map((r) => /^\.\.\/([a-z]+)\/tsconfig\.build\.json$/.exec(r.path)?.[1] ?? r.path);
      expect(references.sort(), `references of @hearsay/${name}`).toEqual([...PACKAGE_MAP[name]!].sort());
    }
  });

  it('is the table in docs/architecture.md', async () => {
    const doc = await readFile(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    const header = '| package | its room | may import (workspace) | other dependencies |';
    const start = doc.indexOf(header);
    expect(start, 'the package table of docs/architecture.md').toBeGreaterThanOrEqual(0);
    const rows = doc
      .slice(start)
      .split('\n')
      .slice(2)
      .filter((line, i, lines) => line.startsWith('|') && lines.slice(0, i).every((l) => l.startsWith('|')));
    const list = (cell: string | undefined): string[] => (cell === '—' ? [] : (cell ?? '').split(',').map((c) => c.trim().replace(/^`|`$/g, '')).sort());
    const shown: Record<string, string[]> = {};
    const order: string[] = [];
    for (const row of rows) {
      const cells = row.split('|').map((cell) => cell.trim());
      const name = /^`@hearsay\/([a-z]+)`$/.exec(cells[1] ?? '')?.[1];
      expect(name, row).toBeDefined();
      shown[name!] = list(cells[3]);
      // The table is a layering: a package uses only packages of rows above it.
      for (const dependency of shown[name!]!) expect(order, `${name} uses ${dependency}`).toContain(dependency);
      order.push(name!);
      const manifest = JSON.parse(await readFile(join(ROOT, 'packages', name!, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      const libraries = Object.keys(manifest.dependencies ?? {}).filter((d) => !d.startsWith('@hearsay/')).sort();
      expect(list(cells[4]), `other dependencies of @hearsay/${name}`).toEqual(libraries);
    }
    expect(shown).toEqual(Object.fromEntries(PACKAGES.map((p) => [p, [...PACKAGE_MAP[p]!].sort()])));
  });

  it('has no known violations except the gossip benchmark reaching into the gossip tests (being moved to a subpath export)', async () => {
    const known = JSON.parse(await readFile(join(ROOT, '.dependency-cruiser-known-violations.json'), 'utf8')) as { from: string }[];
    for (const violation of known) expect(violation.from).toMatch(/^bench\/gossip\//);
  });
});

describe('the dependency check', () => {
  let dir: string;

  /** A miniature of the repo: the real config and map, five packages linked as pnpm links them. */
  async function file(path: string, text: string): Promise<void> {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearsay-depcheck-'));
    await cp(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    await cp(join(ROOT, 'package-map.json'), join(dir, 'package-map.json'));
    const names = ['clock', 'sim', 'storage', 'gossip', 'cluster'];
    await file('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true, noEmit: true } }));
    await file('package.json', JSON.stringify({ name: 'fixture', private: true, type: 'module', devDependencies: Object.fromEntries(names.map((n) => [`@hearsay/${n}`, 'workspace:*'])) }));
    for (const name of names) {
      const deps = PACKAGE_MAP[name]!.filter((d) => names.includes(d));
      await file(
        `packages/${name}/package.json`,
        JSON.stringify({
          name: `@hearsay/${name}`,
          type: 'module',
          exports: { '.': './src/index.ts' },
          dependencies: Object.fromEntries(deps.map((d) => [`@hearsay/${d}`, 'workspace:*'])),
          ...(name === 'clock' ? { devDependencies: { 'dev-only-lib': '1.0.0' } } : {}),
        }),
      );
      const imports = deps.map((d) => `import '@hearsay/${d}';\n`).join('');
      await file(`packages/${name}/src/index.ts`, `${imports}export const ${name} = 1;\n`);
      await file(`packages/${name}/test/helper.ts`, `export const helper = 1;\n`);
      await mkdir(join(dir, 'node_modules', '@hearsay'), { recursive: true });
      await symlink(join(dir, 'packages', name), join(dir, 'node_modules', '@hearsay', name), 'dir');
    }
    await file('packages/gossip/test/sim.test.ts', "import '@hearsay/sim';\nimport '@hearsay/gossip';\n");
    for (const lib of ['dev-only-lib', 'undeclared-lib']) {
      await file(`node_modules/${lib}/package.json`, JSON.stringify({ name: lib, version: '1.0.0', main: 'index.js' }));
      await file(`node_modules/${lib}/index.js`, 'module.exports = 1;\n');
    }
    await file('test/cross.test.ts', "import '@hearsay/cluster';\nimport '@hearsay/storage';\n");
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes a repo that keeps the map', async () => {
    const { code, violations, output } = await check(dir, ['packages', 'test']);
    expect([...violations.keys()], output).toEqual([]);
    expect(code, output).toBe(0);
  });

  it('fails on each kind of forbidden import, naming its rule', async () => {
    const bad: Record<string, string> = {
      // storage may not use cluster (the map), which it does not declare either (a dev dependency of the root only)
      'packages/storage/src/up.ts': "import '@hearsay/cluster';\n",
      // a cycle
      'packages/storage/src/a.ts': "import './b.ts';\nexport const a = 1;\n",
      'packages/storage/src/b.ts': "import './a.ts';\nexport const b = 1;\n",
      // another package's internals and tests, by path
      'packages/cluster/src/reach.ts': "import '../../storage/src/a.ts';\nimport '../../gossip/test/helper.ts';\n",
      // an undeclared library and a devDependency in package code
      'packages/clock/src/libs.ts': "import 'undeclared-lib';\nimport 'dev-only-lib';\n",
      // a package's test that needs another package
      'packages/clock/test/wide.test.ts': "import '@hearsay/storage';\n",
      // test/ by path into a package
      'test/by-path.test.ts': "import '../packages/cluster/src/index.ts';\n",
      // a subpath the package does not export
      'packages/cluster/src/deep.ts': "import '@hearsay/storage/src/index.ts';\n",
    };
    for (const [path, text] of Object.entries(bad)) await file(path, text);
    try {
      const { code, violations: byRule, output } = await check(dir, ['packages', 'test']);
      expect(code, output).not.toBe(0);
      expect([...byRule.keys()].sort(), output).toEqual([
        'map-clock-tests',
        'map-storage',
        'no-circular',
        'no-dev-dependency-in-code',
        'no-internals',
        'no-internals-from-outside',
        'no-other-tests',
        'no-undeclared',
        'no-unresolvable',
      ]);
      expect(byRule.get('map-storage')).toEqual(['packages/storage/src/up.ts → node_modules/@hearsay/cluster/src/index.ts']);
      expect(byRule.get('no-undeclared')).toEqual(['packages/clock/src/libs.ts → node_modules/undeclared-lib/index.js']);
      expect(byRule.get('no-dev-dependency-in-code')?.sort()).toEqual([
        'packages/clock/src/libs.ts → node_modules/dev-only-lib/index.js',
        'packages/storage/src/up.ts → node_modules/@hearsay/cluster/src/index.ts',
      ]);
      expect(byRule.get('no-other-tests')).toEqual(['packages/cluster/src/reach.ts → packages/gossip/test/helper.ts']);
    } finally {
      for (const path of Object.keys(bad)) await rm(join(dir, path));
    }
  });
});
