/** `hearsay start` child processes on loopback for the cluster benches. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(ROOT, 'packages/cli/src/bin.ts');
const START_DEADLINE_MS = 60_000;
/** A node with seeds needs a cluster key; one per bench run, passed in the environment (not the arguments). */
const CLUSTER_KEY = randomBytes(32).toString('base64');

export interface NodeProcess {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
}

/** `count` distinct ports free for TCP and UDP, all held until every one is picked. */
export async function freePorts(count: number): Promise<number[]> {
  const release: Array<() => void> = [];
  const ports: number[] = [];
  try {
    while (ports.length < count) {
      const server = createServer();
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
      });
      release.push(() => server.close());
      const socket = createSocket('udp4');
      const bound = await new Promise<boolean>((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind(port, '127.0.0.1', () => resolve(true));
      });
      if (!bound) continue;
      release.push(() => socket.close());
      ports.push(port);
    }
    return ports;
  } finally {
    for (const r of release) r();
  }
}

/** Starts `hearsay start` as a child process (logs at warn, background repair off: the benches measure the request path). */
export function startNode(name: string, dataDir: string, httpPort: number, gossipPort: number, seeds: readonly string[], extra: readonly string[] = []): NodeProcess {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@hearsay/source', '--import', 'tsx', BIN, 'start',
      '--node-id', name,
      '--data-dir', dataDir,
      '--http-port', String(httpPort),
      '--gossip-port', String(gossipPort),
      '--seeds', seeds.join(','),
      '--log-level', 'warn',
      // Background repair would compete for the 2 cores; the benches measure the request path.
      '--repair-interval-ms', '0',
      ...extra,
    ],
    { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, HEARSAY_CLUSTER_KEY: CLUSTER_KEY } },
  );
  return { name, url: `http://127.0.0.1:${httpPort}`, child };
}

/** A 3-node cluster (RF 3), every node seeded with the others; not waited for. */
export function startCluster(dataDir: string, ports: readonly number[], extra: readonly string[] = []): NodeProcess[] {
  const gossip = [ports[1]!, ports[3]!, ports[5]!];
  return [0, 1, 2].map((i) =>
    startNode(`c${i + 1}`, join(dataDir, `c${i + 1}`), ports[2 * i]!, gossip[i]!, gossip.filter((_, j) => j !== i).map((p) => `127.0.0.1:${p}`), extra),
  );
}

/** Waits until every node serves and sees `size` members alive. */
export async function waitReady(nodes: readonly NodeProcess[], size: number): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (const node of nodes) {
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${node.name} not ready within ${START_DEADLINE_MS} ms`);
      const health = await fetch(`${node.url}/v1/health`).catch(() => undefined);
      if (health?.status === 200) {
        const view = (await (await fetch(`${node.url}/v1/cluster`)).json()) as { members: Array<{ state: string }> };
        if (view.members.filter((m) => m.state === 'alive').length === size) break;
      } else {
        await health?.body?.cancel();
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
