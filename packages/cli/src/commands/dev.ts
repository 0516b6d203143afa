import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { generateKey } from '@hearsay/gossip';
import { CLI_ERROR_CODES, CliError, EXIT_FAILURE, EXIT_OK } from '../errors.ts';
import { formatLogLine, LOG_LEVELS } from '../log-format.ts';
import { envOption, parsePort, parsePositiveInt } from '../options.ts';
import type { CommandContext } from './context.ts';
import type { Output } from '../io.ts';
import { onStopSignals } from '../stop-signals.ts';

interface DevFlags {
  readonly nodes: number;
  readonly basePort: number;
  readonly gossipBasePort?: number;
  readonly dataDir: string;
  readonly replicationFactor: number;
  readonly clusterKey?: string;
  readonly logLevel: string;
}

/** Gossip ports sit this far above the HTTP ports by default: base 7000 gives gossip 7946, the single-node default. */
export const DEV_GOSSIP_PORT_OFFSET = 946;
const MAX_DEV_NODES = 32;
const READY_DEADLINE_MS = 60_000;
// The children run the same entry point as this process: bin.ts through this
// process's loader (tsx) in a clone of the repo, or the compiled bin.js on plain Node.
const BIN = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../bin.ts' : '../bin.js', import.meta.url));

export interface DevNodePlan {
  readonly name: string;
  readonly httpPort: number;
  readonly gossipPort: number;
  readonly dataDir: string;
  readonly url: string;
  /** Never holds a secret: every local user can read a process's arguments. */
  readonly args: readonly string[];
  /** Added to the child's environment (readable by its user alone): the cluster key. */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * The `hearsay start` arguments of each node of a local cluster: loopback,
 * consecutive ports, every other node as a seed, and the cluster key (the
 * given one, else a fresh random one) in the environment, never in the
 * arguments.
 */
export function planDevCluster(flags: DevFlags): DevNodePlan[] {
  const clusterKey = flags.clusterKey === undefined || flags.clusterKey === '' ? generateKey() : flags.clusterKey;
  const gossipBase = flags.gossipBasePort ?? flags.basePort + DEV_GOSSIP_PORT_OFFSET;
  const plans = Array.from({ length: flags.nodes }, (_, i) => {
    const name = `dev-${i + 1}`;
    return { name, httpPort: flags.basePort + i, gossipPort: gossipBase + i, dataDir: join(resolvePath(flags.dataDir), name) };
  });
  for (const plan of plans) {
    for (const port of [plan.httpPort, plan.gossipPort]) {
      if (port > 65_535) throw new InvalidArgumentError(`${flags.nodes} nodes from these base ports run past port 65535`);
    }
  }
  const httpPorts = new Set(plans.map((p) => p.httpPort));
  if (plans.some((p) => httpPorts.has(p.gossipPort))) {
    throw new InvalidArgumentError('the HTTP and gossip port ranges overlap; pick --gossip-base-port further away');
  }
  return plans.map((plan) => {
    const seeds = plans.filter((other) => other !== plan).map((other) => `127.0.0.1:${other.gossipPort}`);
    return {
      ...plan,
      url: `http://127.0.0.1:${plan.httpPort}`,
      args: [
        'start',
        '--node-id', plan.name,
        '--data-dir', plan.dataDir,
        '--host', '127.0.0.1',
        '--http-port', String(plan.httpPort),
        '--gossip-port', String(plan.gossipPort),
        '--seeds', seeds.join(','),
        '--replication-factor', String(flags.replicationFactor),
        '--log-level', flags.logLevel,
      ],
      env: { HEARSAY_CLUSTER_KEY: clusterKey },
    };
  });
}

export function registerDevCommand(program: Command, context: CommandContext): void {
  program
    .command('dev')
    .summary('run a local cluster of N nodes on loopback until Ctrl-C')
    .description(
      'run a local cluster: N `hearsay start` child processes on 127.0.0.1, HTTP on consecutive ports from --base-port, ' +
        'gossip on consecutive ports from --gossip-base-port, data under <data-dir>/dev-<i>; prints how to reach each node, ' +
        "prefixes each node's log lines with its name, and stops every node cleanly on Ctrl-C (SIGINT) or SIGTERM",
    )
    .addOption(envOption('--nodes <n>', `number of nodes (1 to ${MAX_DEV_NODES})`).default(3).argParser(parseNodeCount))
    .addOption(envOption('--base-port <port>', 'HTTP port of the first node; the others follow').default(7000).argParser(parsePort))
    .addOption(envOption('--gossip-base-port <port>', `gossip port of the first node (default: --base-port + ${DEV_GOSSIP_PORT_OFFSET})`).argParser(parsePort))
    .addOption(envOption('--data-dir <dir>', 'the nodes keep their data in <dir>/dev-1, <dir>/dev-2, ...').default('./data'))
    .addOption(envOption('--replication-factor <n>', 'replicas per key, capped at the member count').default(3).argParser(parsePositiveInt))
    .addOption(envOption('--cluster-key <key>', "shared secret of the cluster, handed to the nodes in their environment (default: a random key made for this run)"))
    .addOption(envOption('--log-level <level>', "the nodes' log level").choices(LOG_LEVELS).default('info'))
    .action(async (flags: DevFlags) => {
      if (flags.basePort === 0) throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, '--base-port 0 cannot give consecutive ports; pick a port');
      context.exitCode = await runDevCluster(planDevCluster(flags), context.io.stdout, context.io.stderr);
    });
}

function parseNodeCount(value: string): number {
  const n = parsePositiveInt(value);
  if (n > MAX_DEV_NODES) throw new InvalidArgumentError(`at most ${MAX_DEV_NODES} nodes`);
  return n;
}

/** Starts the nodes, says how to reach them once all serve, and resolves with the exit status after they stopped. */
async function runDevCluster(plans: readonly DevNodePlan[], stdout: Output, stderr: Output): Promise<number> {
  const children = new Map<string, ChildProcess>();
  const exits: Array<Promise<number>> = [];
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  // The children run in their own sessions, so a terminal's Ctrl-C reaches
  // only this process and each node gets exactly one SIGTERM from here (a
  // second one, later, makes a node exit without draining: that is what a
  // second Ctrl-C here does). If this process goes away anyway, take them along.
  const signals = onStopSignals({
    onStop(reason) {
      if (stopping) return;
      const why = reason.kind === 'signal' ? reason.signal : `the launcher (${reason.command}, pid ${reason.pid}) exited`;
      stdout.write(`\n${why}: stopping ${children.size} nodes (each leaves the cluster, drains, closes its store)\n`);
      stopAll('SIGTERM');
    },
    onForce(signal) {
      stdout.write(`\n${signal} again: the nodes stop without waiting for requests in flight\n`);
      for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  });
  const onExit = (): void => {
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', onExit);

  for (const plan of plans) {
    const child = spawn(process.execPath, [...process.execArgv, BIN, ...plan.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      // A key file or an explicit key of this environment would conflict with the plan's key.
      env: { ...withoutKeys(process.env), ...plan.env, FORCE_COLOR: '0' },
    });
    children.set(plan.name, child);
    forwardLines(child.stdout, (line) => stdout.write(`${plan.name} | ${formatLogLine(line, { color: false, time: false, fields: false })}\n`));
    forwardLines(child.stderr, (line) => stderr.write(`${plan.name} | ${line}\n`));
    exits.push(
      new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          if (!stopping) {
            stderr.write(`${plan.name} exited (${signal ?? `code ${code}`}); stopping the others\n`);
            stopAll('SIGTERM');
          }
          resolve(code === 0 ? EXIT_OK : EXIT_FAILURE);
        });
      }),
    );
  }

  const ready = await waitUntilServing(plans, () => stopping);
  if (ready) stdout.write(howToReach(plans));
  else if (!stopping) {
    stderr.write(`the cluster did not serve within ${READY_DEADLINE_MS / 1000} s; stopping it\n`);
    stopAll('SIGTERM');
  }
  const codes = await Promise.all(exits);
  signals.dispose();
  process.off('exit', onExit);
  const failed = codes.some((code) => code !== EXIT_OK);
  stdout.write(failed ? 'dev cluster stopped; some nodes did not stop cleanly\n' : 'dev cluster stopped\n');
  return failed || !ready ? EXIT_FAILURE : EXIT_OK;
}

async function waitUntilServing(plans: readonly DevNodePlan[], stopped: () => boolean): Promise<boolean> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  const pending = new Set(plans.map((p) => p.url));
  while (pending.size > 0) {
    if (stopped() || Date.now() > deadline) return false;
    for (const url of [...pending]) {
      const health = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
      await health?.body?.cancel();
      if (health?.status === 200) pending.delete(url);
    }
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return true;
}

export function howToReach(plans: readonly DevNodePlan[]): string {
  const first = plans[0]!;
  const other = plans[1] ?? first;
  const lines = [
    '',
    `dev cluster of ${plans.length} ${plans.length === 1 ? 'node' : 'nodes'} on loopback is serving:`,
    ...plans.map((p) => `  ${p.name}  ${p.url}  gossip 127.0.0.1:${p.gossipPort}  data ${p.dataDir}`),
    '',
    'try:',
    `  curl -X PUT --data 'hello' ${first.url}/v1/kv/greeting`,
    `  curl ${other.url}/v1/kv/greeting`,
    `  pnpm hearsay get greeting --node ${other.url}`,
    `  pnpm hearsay status --node ${first.url}`,
    `  pnpm hearsay repair --node ${other.url}`,
    '',
    'Ctrl-C stops every node.',
    '',
  ];
  return `${lines.join('\n')}\n`;
}

function withoutKeys(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { HEARSAY_CLUSTER_KEY: _key, HEARSAY_CLUSTER_KEY_FILE: _file, ...rest } = env;
  return rest;
}

function forwardLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) if (part !== '') onLine(part);
  });
  stream.on('end', () => {
    if (rest !== '') onLine(rest);
  });
}
