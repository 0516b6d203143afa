/**
 * test/cluster-three.test.ts again with every protection on: HTTPS with
 * certificates of a test CA and peer certificates checked, the cluster key
 * in a key file, client tokens (see SECURE in test/cluster-processes.ts).
 */
import './support/secure-mode.ts';
import './cluster-three.test.ts';
