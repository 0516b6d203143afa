/**
 * Real `hearsay start` processes on loopback for the cluster tests: free
 * ports picked up front (so a restarted node comes back on the same ones),
 * fast gossip through the advanced flags, and helpers that poll a condition
 * with a deadline. Nothing here sleeps a fixed time.
 *
 * With `HEARSAY_TEST_SECURE=1` (set by test/support/secure-mode.ts, which the
 * `*-secure.test.ts` files import first) the same suites run with every
 * protection on: HTTPS with certificates of a test CA and peer certificates
 * checked (`--tls-verify-peers`), the cluster key in a 0600 key file, and an
 * auth file; the helpers then reach the nodes over HTTPS with the CA and an
 * admin token, and `runCli` passes both in HEARSAY_CA_FILE and HEARSAY_TOKEN.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { nodeFetch } from '@hearsay/client/node';
import { backgroundClock } from '@hearsay/clock';
import { createHttpTransport, InternodePeerClient, type InternodeTls } from '@hearsay/cluster';
import { createToken } from '@hearsay/http';
import type { StoredRecord } from '@hearsay/storage';
import { CliProcess, until as untilWithin, withDeadline as withDeadlineOf } from './support/processes.ts';
import { makeCa, makeCertificate } from './support/tls.ts';

export { BIN, ROOT, type LogLine } from './support/processes.ts';
export const DEADLINE_MS = 30_000;
/** How often `until` polls. */
const POLL_MS = 50;

/** Gossip and cluster timers fast enough for a test, through the advanced flags of `hearsay start`. */
export const FAST_FLAGS = [
  '--gossip-probe-interval-ms', '200',
  '--gossip-probe-timeout-ms', '100',
  '--gossip-interval-ms', '50',
  '--gossip-push-pull-interval-ms', '1000',
  '--handoff-interval-ms', '300',
  // Generous: a loaded CI machine should not turn a slow replica into a 503 here.
  '--request-timeout-ms', '5000',
  // Background repair off: the tests show what hints and `hearsay repair` do.
  '--repair-interval-ms', '0',
  // Membership changes take their steps every 100 ms (formation, joins, decommissions).
  '--ring-sync-interval-ms', '100',
];

/** Every protection on (TLS, peer certificates, key file, tokens): see the file comment. */
export const SECURE = process.env['HEARSAY_TEST_SECURE'] === '1';

interface Security {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly authFile: string;
  /** An admin token of the auth file. */
  readonly token: string;
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
  readonly internodeTls: InternodeTls;
}

let security: Security | undefined;

/** The test CA, one node certificate (127.0.0.1) every node shows, and an auth file with an admin token; made once per test file. */
function securityOf(): Security {
  if (security !== undefined) return security;
  const dir = mkdtempSync(join(tmpdir(), 'hearsay-secure-'));
  const ca = makeCa(dir);
  const cert = makeCertificate(ca, 'node');
  const admin = createToken({ scopes: ['admin'], id: 'test-admin' });
  const authFile = join(dir, 'tokens');
  writeFileSync(authFile, `${admin.line}\n`, { mode: 0o600 });
  const context = createSecureContext({ ca: readFileSync(ca.caFile), cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) });
  const https = nodeFetch({ ca: readFileSync(ca.caFile) });
  security = {
    dir,
    caFile: ca.caFile,
    ...cert,
    authFile,
    token: admin.token,
    fetch: (url, init) => https(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${admin.token}` } }),
    internodeTls: { secureContext: () => context },
  };
  return security;
}

/**
 * `fetch` to a test node: plain, or in secure mode over HTTPS with the test
 * CA and the admin token (no token with `{ token: false }`).
 */
export function api(url: string, init: RequestInit = {}): Promise<Response> {
  return SECURE ? securityOf().fetch(url, init) : fetch(url, init);
}

/** How a test's own internode client reaches a node: in secure mode it shows the node certificate, as a peer would. */
export function internodeTls(): { tls?: InternodeTls } {
  return SECURE ? { tls: securityOf().internodeTls } : {};
}

/** The environment a `hearsay` client command needs to reach a test node (the CA and a token in secure mode). */
export function clientEnv(): NodeJS.ProcessEnv {
  return SECURE ? { HEARSAY_CA_FILE: securityOf().caFile, HEARSAY_TOKEN: securityOf().token } : {};
}

/** A `hearsay` process whose stdout and stderr are collected as they arrive; stdin is closed. */
export class Proc extends CliProcess {
  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}, prefix: readonly string[] = []) {
    super(args, env, { deadlineMs: DEADLINE_MS, pollMs: POLL_MS, stdin: 'ignore', prefix });
  }
}

/** One node of a test cluster: its ports and data dir stay the same across restarts. */
export class TestNode {
  proc: Proc | undefined;
  constructor(
    readonly id: string,
    readonly httpPort: number,
    readonly gossipPort: number,
    readonly dataDir: string,
    readonly clusterKey: string,
    public seeds: string[],
  ) {}

  get url(): string {
    return `${SECURE ? 'https' : 'http'}://127.0.0.1:${this.httpPort}`;
  }

  get gossipAddress(): string {
    return `127.0.0.1:${this.gossipPort}`;
  }

  /** `prefix` runs node through another command (e.g. `faketime -f +1h`). */
  start(extra: readonly string[] = [], prefix: readonly string[] = []): Proc {
    const args = [
      'start',
      '--node-id', this.id,
      '--data-dir', this.dataDir,
      '--http-port', String(this.httpPort),
      '--gossip-port', String(this.gossipPort),
      '--seeds', this.seeds.join(','),
      '--log-level', 'info',
      ...FAST_FLAGS,
      ...extra,
    ];
    if (!SECURE) {
      this.proc = new Proc(args, { HEARSAY_CLUSTER_KEY: this.clusterKey }, prefix);
      return this.proc;
    }
    const s = securityOf();
    // The key in a private file, as an operator would keep it.
    const keyFile = join(s.dir, `cluster-${this.id}.key`);
    writeFileSync(keyFile, `${this.clusterKey}\n`, { mode: 0o600 });
    this.proc = new Proc(
      [...args, '--tls-cert', s.certFile, '--tls-key', s.keyFile, '--tls-ca', s.caFile, '--tls-verify-peers', '--auth-file', s.authFile],
      { HEARSAY_CLUSTER_KEY: undefined, HEARSAY_CLUSTER_KEY_FILE: keyFile },
      prefix,
    );
    return this.proc;
  }

  signal(signal: NodeJS.Signals): void {
    this.proc?.child.kill(signal);
  }

  /** SIGTERM (SIGCONT first, in case it is frozen) and wait for the exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    proc.child.kill('SIGCONT');
    proc.child.kill('SIGTERM');
    await proc.exited;
  }

  describe(): string {
    return `node ${this.id} (${this.url}); stdout tail:\n${this.proc?.stdout.slice(-3000) ?? ''}\nstderr:\n${this.proc?.stderr.slice(-3000) ?? ''}`;
  }
}

export class TestCluster {
  private constructor(
    readonly nodes: TestNode[],
    readonly tmp: string,
  ) {}

  /** N nodes, every one seeded with every other's gossip address; started in parallel; resolves when all serve and see each other. */
  static async start(size: number, clusterKey: string): Promise<TestCluster> {
    const tmp = await mkdtemp(join(tmpdir(), `hearsay-cluster-${size}-`));
    const ports = await freePorts(2 * size, true);
    const nodes: TestNode[] = [];
    for (let i = 0; i < size; i += 1) {
      nodes.push(new TestNode(`n${i + 1}`, ports[2 * i]!, ports[2 * i + 1]!, join(tmp, `n${i + 1}`), clusterKey, []));
    }
    for (const node of nodes) node.seeds = nodes.filter((other) => other !== node).map((other) => other.gossipAddress);
    const cluster = new TestCluster(nodes, tmp);
    for (const node of nodes) node.start();
    try {
      await cluster.waitConverged();
      if (SECURE) await cluster.checkProtected();
    } catch (error) {
      // The caller never gets the cluster to stop: do not leave its processes running.
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /**
   * A new node with fresh ports and data dir, seeded with every node of the
   * cluster, started with `extra` flags (not waited for).
   */
  async addNode(id: string, extra: readonly string[] = []): Promise<TestNode> {
    const [httpPort, gossipPort] = await freePorts(2, true);
    const node = new TestNode(id, httpPort!, gossipPort!, join(this.tmp, id), this.nodes[0]?.clusterKey ?? '', this.nodes.map((n) => n.gossipAddress));
    this.nodes.push(node);
    node.start(extra);
    return node;
  }

  node(id: string): TestNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Every node in `ids` serves and sees exactly `ids` alive. */
  async waitConverged(ids: readonly string[] = this.nodes.map((n) => n.id)): Promise<void> {
    const want = [...ids].sort().join(',');
    // What each node last showed, for the failure message.
    const seen = new Map<string, string>();
    await until(async () => {
      let converged = true;
      for (const id of ids) {
        const node = this.node(id);
        const health = await api(`${node.url}/v1/health`).catch(() => undefined);
        if (health?.status !== 200) {
          seen.set(id, `health ${health?.status ?? 'unreachable'}`);
          converged = false;
          continue;
        }
        const members = (await memberView(node)) ?? [];
        const alive = aliveIds(members).join(',');
        seen.set(id, `sees [${members.map((m) => `${m.id} ${m.state}${m.http === '' ? ' (no http)' : ''}`).join(', ')}]`);
        if (alive !== want) converged = false;
      }
      return converged ? true : undefined;
    }, () => `cluster did not converge on ${want}: ${[...seen].map(([id, s]) => `${id} ${s}`).join('; ')}\n${this.nodes.map((n) => n.describe()).join('\n')}`);
  }

  /** In secure mode: every node says it serves TLS, checks tokens and has a key, and refuses a request without a token. */
  async checkProtected(): Promise<void> {
    for (const node of this.nodes) {
      const health = (await (await api(`${node.url}/v1/health`)).json()) as { security?: unknown };
      if (JSON.stringify(health.security) !== JSON.stringify({ clientAuth: 'tokens', tls: true, internode: 'cluster-key' })) {
        throw new Error(`${node.id} is not fully protected: ${JSON.stringify(health.security)}`);
      }
      const anonymous = await nodeFetch({ ca: readFileSync(securityOf().caFile), keepAlive: false })(`${node.url}/v1/kv/x`, {});
      await anonymous.arrayBuffer();
      if (anonymous.status !== 401) throw new Error(`${node.id} answered ${anonymous.status} without a token`);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    await rm(this.tmp, { recursive: true, force: true });
    if (security !== undefined) await rm(security.dir, { recursive: true, force: true });
    security = undefined;
  }
}

type MemberView = Array<{ id: string; state: string; http: string }>;

/** The members of `node`'s `/v1/cluster`, or undefined when it does not answer. */
async function memberView(node: TestNode): Promise<MemberView | undefined> {
  const response = await api(`${node.url}/v1/cluster`).catch(() => undefined);
  if (response?.status !== 200) return undefined;
  return ((await response.json()) as { members: MemberView }).members;
}

/** The members `node` sees alive with a known HTTP address. */
export async function aliveMembers(node: TestNode): Promise<string[]> {
  return aliveIds((await memberView(node)) ?? []);
}

function aliveIds(members: MemberView): string[] {
  // A member whose HTTP address has not arrived through gossip yet cannot be sent replicas' requests.
  return members.filter((m) => m.state === 'alive' && m.http !== '').map((m) => m.id).sort();
}

export async function put(node: TestNode, key: string, value: string, consistency = 'quorum'): Promise<Response> {
  return api(`${node.url}/v1/kv/${encodeURIComponent(key)}?consistency=${consistency}`, { method: 'PUT', body: value });
}

export async function del(node: TestNode, key: string, consistency = 'quorum'): Promise<Response> {
  return api(`${node.url}/v1/kv/${encodeURIComponent(key)}?consistency=${consistency}`, { method: 'DELETE' });
}

/** The value, or undefined for 404; throws on any other status. */
export async function get(node: TestNode, key: string, consistency = 'quorum'): Promise<string | undefined> {
  const response = await api(`${node.url}/v1/kv/${encodeURIComponent(key)}?consistency=${consistency}`);
  if (response.status === 404) return undefined;
  if (response.status !== 200) throw new Error(`GET ${key} at ${consistency} from ${node.id}: ${response.status} ${await response.text()}`);
  return response.text();
}

/** A Prometheus sample of the node's `/metrics`, e.g. `hearsay_cluster_hints`. */
export async function metric(node: TestNode, name: string): Promise<number | undefined> {
  const response = await api(`${node.url}/metrics`).catch(() => undefined);
  if (response?.status !== 200) return undefined;
  const line = (await response.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * Everything one node holds under `prefix`, tombstones included, read through
 * the signed internode `scan` route: what this replica has, not what a
 * coordinator assembles from several.
 */
export async function localRecords(node: TestNode, prefix: string): Promise<StoredRecord[]> {
  const peer = new InternodePeerClient(createHttpTransport({ baseUrl: node.url, targetId: node.id, clusterKey: node.clusterKey, clock: backgroundClock, ...internodeTls() }), {
    clock: backgroundClock,
    timeoutMs: 10_000,
  });
  const records: StoredRecord[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await peer.scan(after === undefined ? { prefix, limit: 1000 } : { prefix, after, limit: 1000 });
    records.push(...page.records);
    if (!page.more || page.records.length === 0) return records;
    after = page.records[page.records.length - 1]!.key;
  }
}

/** A replica's records as comparable text: key, version and value or tombstone. */
export function fingerprint(records: readonly StoredRecord[]): string[] {
  return records.map((r) => `${r.key} ${JSON.stringify(r.version)} ${r.tombstone ? '<deleted>' : Buffer.from(r.value).toString()}`);
}

/** Runs `hearsay <args>` to completion. */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = new Proc(args, { ...clientEnv(), ...env });
  const code = await proc.exitCode();
  return { code, stdout: proc.stdout, stderr: proc.stderr };
}

export async function withDeadline<T>(promise: Promise<T>, describe: () => string, deadlineMs = DEADLINE_MS): Promise<T> {
  return withDeadlineOf(promise, describe, deadlineMs);
}

/** Polls `probe` until it returns a value, or fails at the deadline. */
export async function until<T>(probe: () => T | undefined | Promise<T | undefined>, describe: () => string, deadlineMs = DEADLINE_MS): Promise<T> {
  return untilWithin(probe, describe, { deadlineMs, pollMs: POLL_MS });
}

/** A TCP port free right now (for one node; to pick several, use `freePorts` so none is picked twice). */
export async function freeTcpPort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** A port free for TCP and UDP both (gossip binds the two). */
export async function freeGossipPort(): Promise<number> {
  return (await freePorts(1, true))[0]!;
}

/**
 * `count` distinct free ports (free for UDP too when `udp`), all held open
 * until every one is picked, so none is picked twice. They are drawn at
 * random below Linux's ephemeral range (32768 and up), not with port 0:
 * a port the OS hands out for listening is also one it hands out as the
 * local end of outgoing connections, and with many tests connecting at
 * once such a port was sometimes taken between the pick and the node's
 * bind (PORT_IN_USE).
 */
export async function freePorts(count: number, udp = false): Promise<number[]> {
  const held: Array<() => Promise<void>> = [];
  const ports: number[] = [];
  try {
    while (ports.length < count) {
      const candidate = 20_000 + Math.floor(Math.random() * 12_000);
      if (ports.includes(candidate)) continue;
      const server = createServer();
      const port = await new Promise<number | undefined>((resolve) => {
        server.once('error', () => resolve(undefined));
        server.listen(candidate, '127.0.0.1', () => resolve(candidate));
      });
      if (port === undefined) continue;
      held.push(() => new Promise((resolve) => server.close(() => resolve())));
      if (udp) {
        const socket = createSocket('udp4');
        const bound = await new Promise<boolean>((resolve) => {
          socket.once('error', () => resolve(false));
          socket.bind(port, '127.0.0.1', () => resolve(true));
        });
        if (!bound) continue;
        held.push(() => new Promise((resolve) => socket.close(() => resolve())));
      }
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map((release) => release()));
  }
}

/** Two bases of `count` consecutive ports each, free for TCP and UDP (for `hearsay dev --base-port --gossip-base-port`). */
export async function freeConsecutivePorts(count: number): Promise<[number, number]> {
  const bases: number[] = [];
  while (bases.length < 2) {
    const base = 20_000 + Math.floor(Math.random() * 12_000); // below the ephemeral range, as in freePorts
    if (bases.some((b) => Math.abs(b - base) < count)) continue;
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(isFreeForTcpAndUdp))).every(Boolean)) bases.push(base);
  }
  return [bases[0]!, bases[1]!];
}

async function isFreeForTcpAndUdp(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}
