/**
 * TLS and key rotation on real `hearsay start` processes, with certificates
 * the test makes with openssl (test/support/tls.ts): the public API over
 * HTTPS for clients that trust the CA (`nodeFetch`, `hearsay --ca-file`);
 * internode traffic over HTTPS with client certificates checked
 * (`--tls-verify-peers`) on top of the cluster key; certificates replaced
 * on disk and taken up without a restart; and the cluster key rotated (add,
 * use, remove) one node at a time while writes at `all` keep succeeding.
 */
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createSecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeFetch } from '@hearsay/client/node';
import { backgroundClock } from '@hearsay/clock';
import { ClusterKeys, createHttpTransport, InternodePeerClient } from '@hearsay/cluster';
import { freePorts, Proc, runCli, until } from './cluster-processes.ts';
import { makeCa, makeCertificate, type TestCa, type TestCertificate } from './support/tls.ts';

const NO_SECRETS = { HEARSAY_CLUSTER_KEY: undefined, HEARSAY_CLUSTER_KEY_FILE: undefined, HEARSAY_AUTH_FILE: undefined, HEARSAY_TOKEN: undefined, HEARSAY_CA_FILE: undefined };
const FAST = ['--gossip-probe-interval-ms', '200', '--gossip-probe-timeout-ms', '100', '--gossip-interval-ms', '50', '--gossip-push-pull-interval-ms', '1000', '--request-timeout-ms', '5000', '--repair-interval-ms', '0'];
const KEY_A = 'a'.repeat(43) + '=';
const KEY_B = 'b'.repeat(43) + '=';

let tmp: string;
let ca: TestCa;
let certs: Record<'n1' | 'n2' | 'n1-renewed' | 'client', TestCertificate>;
let rogue: TestCertificate;
let https: ReturnType<typeof nodeFetch>;
const procs: Proc[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hearsay-tls-'));
  ca = makeCa(tmp);
  certs = { n1: makeCertificate(ca, 'n1'), n2: makeCertificate(ca, 'n2'), 'n1-renewed': makeCertificate(ca, 'n1-renewed'), client: makeCertificate(ca, 'client') };
  rogue = makeCertificate(makeCa(tmp, 'rogue-ca'), 'rogue');
  https = nodeFetch({ ca: await readFile(ca.caFile) });
});

afterAll(async () => {
  for (const proc of procs) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  }
  await rm(tmp, { recursive: true, force: true });
});

interface TlsNode {
  readonly id: string;
  readonly proc: Proc;
  readonly url: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly clusterKeyFile: string;
}

/** A node serving HTTPS with its own copies of its certificate and key (so a test can replace them) and a key file. */
async function startNode(id: 'n1' | 'n2', httpPort: number, gossipPort: number, seeds: string[], keys: readonly string[]): Promise<TlsNode> {
  const certFile = join(tmp, `${id}-served.pem`);
  const keyFile = join(tmp, `${id}-served.key`);
  const clusterKeyFile = join(tmp, `${id}-cluster.key`);
  await copyFile(certs[id].certFile, certFile);
  await copyFile(certs[id].keyFile, keyFile);
  await writeFile(clusterKeyFile, `${keys.join('\n')}\n`, { mode: 0o600 });
  const proc = new Proc(
    [
      'start', '--node-id', id, '--data-dir', join(tmp, id), '--http-port', String(httpPort), '--gossip-port', String(gossipPort), '--seeds', seeds.join(','),
      '--tls-cert', certFile, '--tls-key', keyFile, '--tls-ca', ca.caFile, '--tls-verify-peers', '--cluster-key-file', clusterKeyFile, ...FAST,
    ],
    NO_SECRETS,
  );
  procs.push(proc);
  return { id, proc, url: `https://127.0.0.1:${httpPort}`, certFile, keyFile, clusterKeyFile };
}

async function healthy(node: TlsNode): Promise<void> {
  await until(async () => {
    const response = await https(`${node.url}/v1/health`, {}).catch(() => undefined);
    await response?.arrayBuffer();
    return response?.status === 200 ? true : undefined;
  }, () => `${node.id} never served:\n${node.proc.stdout.slice(-3000)}\n${node.proc.stderr}`);
}

/** Writes at `all` through `node` (every replica must take it over internode HTTPS) and reads it back at `all` through `other`. */
async function writeEverywhere(node: TlsNode, other: TlsNode, key: string): Promise<void> {
  const put = await https(`${node.url}/v1/kv/${key}?consistency=all`, { method: 'PUT', body: key });
  expect(put.status, `${key}: ${await put.clone().text()}`).toBe(204);
  const get = await https(`${other.url}/v1/kv/${key}?consistency=all`, {});
  expect(await get.text()).toBe(key);
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `url` gets. */
function servedFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    // Not verified here: the test compares what is served with the files.
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

const fingerprintOf = async (certFile: string): Promise<string> => new X509Certificate(await readFile(certFile)).fingerprint256;

describe('TLS on the public API, one node', () => {
  it('serves HTTPS to clients that trust the CA (nodeFetch, hearsay --ca-file); others are told why', async () => {
    const [httpPort, gossipPort] = await freePorts(2, true);
    const node = await startNode('n1', httpPort!, gossipPort!, [], [KEY_A]);
    await healthy(node);
    const health = (await (await https(`${node.url}/v1/health`, {})).json()) as { security: Record<string, unknown> };
    expect(health.security).toMatchObject({ tls: true, internode: 'cluster-key' });
    expect(node.proc.logs().find((l) => l.msg.startsWith('serving HTTPS'))).toMatchObject({ verifyPeers: true });

    // Node's fetch trusts only the system's CAs.
    const untrusted = await fetch(`${node.url}/v1/health`).catch((error: unknown) => error);
    expect(String((untrusted as { cause?: { code?: string } }).cause?.code)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    // Plain HTTP to the HTTPS port gets no answer it could take for one.
    const plain = await fetch(node.url.replace('https:', 'http:') + '/v1/health').then((r) => r.status, () => 'refused');
    expect(plain === 'refused' || plain === 400).toBe(true);

    const env = { ...NO_SECRETS, HEARSAY_NODE: node.url };
    const put = await runCli(['put', 'tls/one', 'over https', '--ca-file', ca.caFile], env);
    expect(put.code, put.stderr).toBe(0);
    const get = await runCli(['get', 'tls/one'], { ...env, HEARSAY_CA_FILE: ca.caFile });
    expect(get.stdout).toBe('over https');
    const without = await runCli(['get', 'tls/one'], env);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('--ca-file');

    node.proc.child.kill('SIGTERM');
    expect(await node.proc.exitCode()).toBe(0);
  });
});

describe('TLS between nodes, certificate reload and key rotation', () => {
  let n1: TlsNode;
  let n2: TlsNode;

  beforeAll(async () => {
    const ports = await freePorts(4, true);
    const gossip = [`127.0.0.1:${ports[1]}`, `127.0.0.1:${ports[3]}`];
    n1 = await startNode('n1', ports[0]!, ports[1]!, [gossip[1]!], [KEY_A]);
    n2 = await startNode('n2', ports[2]!, ports[3]!, [gossip[0]!], [KEY_A]);
    await healthy(n1);
    await healthy(n2);
  });

  it('replicates over HTTPS between nodes that show each other their certificates', async () => {
    await writeEverywhere(n1, n2, 'tls/replicated');
    await writeEverywhere(n2, n1, 'tls/back');
  });

  it('answers the internode routes only to a certificate of the CA, and then only with the cluster key', async () => {
    const contextOf = async (cert: TestCertificate | undefined) =>
      createSecureContext({
        ca: await readFile(ca.caFile),
        ...(cert === undefined ? {} : { cert: await readFile(cert.certFile), key: await readFile(cert.keyFile) }),
      });
    const peer = async (key: string, cert: TestCertificate | undefined) => {
      const context = await contextOf(cert);
      return new InternodePeerClient(
        createHttpTransport({ baseUrl: n1.url, targetId: 'n1', clock: backgroundClock, clusterKey: key, tls: { secureContext: () => context } }),
        { clock: backgroundClock, timeoutMs: 10_000 },
      );
    };
    const scan = { prefix: 'tls/', limit: 10 };
    // No certificate, or one of another CA: refused from the connection, whatever the key.
    await expect((await peer(KEY_A, undefined)).scan(scan)).rejects.toMatchObject({ code: 'PEER_UNAUTHORIZED', message: expect.stringContaining('(401)') });
    await expect((await peer(KEY_A, rogue)).scan(scan)).rejects.toMatchObject({ code: 'PEER_UNAUTHORIZED', message: expect.stringContaining('client certificate') });
    // A certificate of the CA with another key: refused by the signature.
    await expect((await peer(KEY_B, certs.client)).scan(scan)).rejects.toMatchObject({ code: 'PEER_UNAUTHORIZED', message: expect.stringContaining('(403)') });
    // Both right: served.
    const page = await (await peer(KEY_A, certs.client)).scan(scan);
    expect(page.records.map((r) => r.key)).toContain('tls/replicated');
    const metrics = await (await https(`${n1.url}/metrics`, {})).text();
    expect(Number(/^hearsay_internode_peer_certificate_refusals_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
  });

  it('takes a replaced certificate for new connections without a restart', async () => {
    const before = await servedFingerprint(n1.url);
    expect(before).toBe(await fingerprintOf(certs.n1.certFile));
    // As a renewal tool does: key first, then certificate (the node keeps the old pair until the two match).
    await copyFile(certs['n1-renewed'].keyFile, n1.keyFile);
    await copyFile(certs['n1-renewed'].certFile, n1.certFile);
    const renewed = await fingerprintOf(certs['n1-renewed'].certFile);
    await until(async () => ((await servedFingerprint(n1.url)) === renewed ? true : undefined), () => `n1 still serves its old certificate:\n${n1.proc.stdout.slice(-2000)}`);
    expect(n1.proc.logs().some((l) => l.msg.startsWith('TLS certificates reloaded'))).toBe(true);
    expect(n1.proc.child.exitCode).toBeNull();
    await writeEverywhere(n2, n1, 'tls/after-renewal');
    await writeEverywhere(n1, n2, 'tls/after-renewal-back');
  });

  it('rotates the cluster key one node at a time (add, use, remove) while writes at all keep succeeding', async () => {
    const reloads = (node: TlsNode): number => node.proc.logs().filter((l) => l.msg.startsWith('cluster keys reloaded')).length;
    const step = async (node: TlsNode, keys: readonly string[]): Promise<void> => {
      const before = reloads(node);
      await writeFile(node.clusterKeyFile, `${keys.join('\n')}\n`);
      await until(() => (reloads(node) > before ? true : undefined), () => `${node.id} did not reload its key file:\n${node.proc.stdout.slice(-2000)}`);
    };
    let i = 0;
    for (const keys of [[KEY_A, KEY_B], [KEY_B, KEY_A], [KEY_B]]) {
      await step(n1, keys);
      await writeEverywhere(n1, n2, `rotate/${i}/n1-first`);
      await writeEverywhere(n2, n1, `rotate/${i}/n1-first-back`);
      await step(n2, keys);
      await writeEverywhere(n1, n2, `rotate/${i}/both`);
      await writeEverywhere(n2, n1, `rotate/${i}/both-back`);
      i += 1;
    }
    // The old key is refused now.
    const context = createSecureContext({ ca: await readFile(ca.caFile), cert: await readFile(certs.client.certFile), key: await readFile(certs.client.keyFile) });
    const stale = new InternodePeerClient(
      createHttpTransport({ baseUrl: n2.url, targetId: 'n2', clock: backgroundClock, clusterKey: new ClusterKeys([KEY_A]), tls: { secureContext: () => context } }),
      { clock: backgroundClock, timeoutMs: 10_000 },
    );
    await expect(stale.scan({ prefix: '', limit: 1 })).rejects.toMatchObject({ code: 'PEER_UNAUTHORIZED' });
  });
});
