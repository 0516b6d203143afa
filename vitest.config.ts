import { defineConfig } from 'vitest/config';

/** Workspace packages resolve to their TypeScript sources (`src/`), not to their builds (`dist/`). */
const SOURCE_CONDITION = '@hearsay/source';

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, 'import', 'module', 'node', 'default'] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, 'import', 'module', 'node', 'default'], externalConditions: [SOURCE_CONDITION] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Every response a test gets from a node is checked against /v1/openapi.json.
    setupFiles: ['test/support/openapi-setup.ts'],
    // Simulation and process tests are CPU-bound; the CI machine has 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
