/**
 * The package map, enforced: `pnpm check:deps` (part of `pnpm test`, so CI
 * runs it) fails on any import these rules forbid. docs/architecture.md shows
 * the same map; test/package-map.test.ts checks that the two agree, that
 * every package declares the workspace packages its code uses and no others,
 * and that deliberately bad imports fail the check.
 */

/**
 * package-map.json: which workspace packages each package's own code (src/,
 * examples/) may import (`packages`), and the test kits (`testKits`,
 * @hearsay/sim) any package's tests may use besides those. A test that needs
 * another package is a cross-package test and lives in test/.
 */
const { packages: PACKAGE_MAP, testKits: TEST_KITS } = require('./package-map.json');

const PACKAGES = Object.keys(PACKAGE_MAP);
const alternatives = (names) => `(${names.join('|')})`;
/** A workspace package reached through its name (pnpm links it under node_modules/@hearsay). */
const viaName = (names) => `node_modules/@hearsay/${alternatives(names)}/`;
const others = (name) => PACKAGES.filter((p) => p !== name);
const TEST_FILE = '(^|/)test/|\\.test\\.ts$';

const mapRules = PACKAGES.flatMap((name) => {
  const allowed = PACKAGE_MAP[name];
  const forbiddenForCode = others(name).filter((p) => !allowed.includes(p));
  const forbiddenForTests = forbiddenForCode.filter((p) => !TEST_KITS.includes(p));
  return [
    ...(forbiddenForCode.length === 0
      ? []
      : [
          {
            name: `map-${name}`,
            comment: `@hearsay/${name} may use ${allowed.length === 0 ? 'no other workspace package' : allowed.map((p) => `@hearsay/${p}`).join(', ')} (docs/architecture.md)`,
            severity: 'error',
            from: { path: `^packages/${name}/`, pathNot: TEST_FILE },
            to: { path: viaName(forbiddenForCode) },
          },
        ]),
    ...(forbiddenForTests.length === 0
      ? []
      : [
          {
            name: `map-${name}-tests`,
            comment: `tests of @hearsay/${name} use it, its dependencies and ${TEST_KITS.map((p) => `@hearsay/${p}`).join(', ')}; a test that needs more is a cross-package test and lives in test/`,
            severity: 'error',
            from: { path: `^packages/${name}/(test/|.*\\.test\\.ts$)` },
            to: { path: viaName(forbiddenForTests) },
          },
        ]),
  ];
});

module.exports = {
  forbidden: [
    ...mapRules,
    {
      name: 'no-circular',
      comment: 'modules import each other, directly or through others',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-internals',
      comment: "another package's files are reached only through its name and its exports, never by path (../../other/src/...)",
      severity: 'error',
      from: { path: '^packages/([^/]+)/' },
      to: { path: '^packages/', pathNot: '^packages/$1/' },
    },
    {
      name: 'no-internals-from-outside',
      comment: 'test/ and bench/ reach packages through their names and exports, never by path',
      severity: 'error',
      from: { path: '^(test|bench)/' },
      to: { path: '^packages/' },
    },
    {
      name: 'no-other-tests',
      comment: "nothing imports another package's tests or test helpers",
      severity: 'error',
      from: { path: '^packages/([^/]+)/' },
      to: { path: '(^packages/|node_modules/@hearsay/)[^/]+/(test/|.*\\.test\\.ts$)', pathNot: '^packages/$1/' },
    },
    {
      name: 'no-undeclared',
      comment: 'an import of a package no package.json on the way up declares',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'no-dev-dependency-in-code',
      comment: "a package's code (not its tests) imports only its dependencies, not devDependencies or the root's",
      severity: 'error',
      from: { path: '^packages/[^/]+/(src|examples)/', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['npm'] },
    },
    {
      name: 'no-unresolvable',
      comment: 'an import that does not resolve (a missing file, or a subpath the package does not export)',
      severity: 'error',
      // The cli's bin shim loads the build output (dist/), which a clean clone has not built.
      from: { pathNot: '^packages/cli/bin/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Build output: what it imports is checked in src/.
    exclude: { path: '(^|/)dist/' },
    // Type-only imports count: a published .d.ts needs them too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // A package's declared dependencies, plus the root's devDependencies (vitest, fast-check, ...)
    // for tests; no-dev-dependency-in-code keeps the root's out of package code.
    combinedDependencies: true,
    // Keep node_modules/@hearsay/<name> paths: they tell an import by name from one by path.
    preserveSymlinks: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['@hearsay/source', 'import', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
    },
  },
};
