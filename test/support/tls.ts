/**
 * Real certificates for the TLS tests, made with the openssl command line
 * exactly as docs/security.md tells an operator to make a test CA: a CA,
 * then node certificates it signs, each valid for 127.0.0.1 and localhost
 * and usable as server and client certificate (nodes show it to each other).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCa {
  readonly dir: string;
  /** PEM of the CA certificate: what `--tls-ca`, `--ca-file` and `nodeFetch({ ca })` take. */
  readonly caFile: string;
  readonly caKeyFile: string;
}

export interface TestCertificate {
  readonly certFile: string;
  /** Mode 600, as a node requires of a private key. */
  readonly keyFile: string;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA in `dir` (`<name>.pem`, `<name>.key`). */
export function makeCa(dir: string, name = 'ca'): TestCa {
  const caFile = join(dir, `${name}.pem`);
  const caKeyFile = join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKeyFile, '-out', caFile, '-days', '2', '-subj', `/CN=Hearsay test ${name}`]);
  chmodSync(caKeyFile, 0o600);
  return { dir, caFile, caKeyFile };
}

/** A certificate for `name` signed by `ca`, for 127.0.0.1 and localhost, server and client use. */
export function makeCertificate(ca: TestCa, name: string): TestCertificate {
  const keyFile = join(ca.dir, `${name}.key`);
  const csrFile = join(ca.dir, `${name}.csr`);
  const certFile = join(ca.dir, `${name}.pem`);
  const extFile = join(ca.dir, `${name}.ext`);
  writeFileSync(extFile, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${name}`]);
  openssl(['x509', '-req', '-in', csrFile, '-CA', ca.caFile, '-CAkey', ca.caKeyFile, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', extFile]);
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile };
}
