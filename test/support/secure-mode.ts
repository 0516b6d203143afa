/**
 * Imported first by the `*-secure.test.ts` files: the cluster suites they
 * import next then run with every protection on (test/cluster-processes.ts
 * reads this when it loads). Each test file runs in its own process, so the
 * plain runs of the same suites are unaffected.
 */
process.env['HEARSAY_TEST_SECURE'] = '1';
