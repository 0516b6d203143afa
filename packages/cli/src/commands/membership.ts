import type { Command } from 'commander';
import { HearsayError, type ClusterView } from '@hearsay/client';
import { CLI_ERROR_CODES, CliError, EXIT_FAILURE } from '../errors.ts';
import { envOption, parsePositiveInt } from '../options.ts';
import { ProgressBar } from '../progress-bar.ts';
import type { CommandContext } from './context.ts';
import { addNodeOption, clientFor, type NodeFlag } from './client-options.ts';

/**
 * `hearsay decommission` and `hearsay remove`: membership changes an
 * operator starts (docs/topology.md). Each asks the node, then by default
 * follows the change through `/v1/cluster` until it committed, drawing the
 * partitions streamed on a terminal.
 */

interface WaitFlags extends NodeFlag {
  readonly wait: boolean;
  readonly timeoutS: number;
  readonly json: boolean;
}

interface DecommissionFlags extends WaitFlags {
  readonly abort: boolean;
}

/** How often the change is polled. */
const POLL_MS = 250;

export function registerMembershipCommands(program: Command, context: CommandContext): void {
  const { io } = context;
  const decommission = program
    .command('decommission')
    .summary('hand the partitions of a node to their next owners, then stop it')
    .description(
      'the node (--node) streams each of its partitions to its next owner, keeps serving meanwhile, and leaves the cluster ' +
        'once every partition is copied; its process then exits 0. Refused when fewer owners than the replication factor would remain. ' +
        'Waits for the end unless --no-wait; --abort takes back a decommission in progress',
    )
    .addOption(envOption('--abort', 'take back a decommission in progress: the node owns its partitions again').default(false));
  addWaitOptions(addNodeOption(decommission));
  decommission.action(async (flags: DecommissionFlags) => {
    const client = clientFor(flags);
    const before = await client.cluster();
    const self = before.self;
    const answer = await client.decommission({ abort: flags.abort });
    if (flags.json) io.stdout.write(`${JSON.stringify(answer)}\n`);
    if (flags.abort) {
      if (!flags.json) io.stdout.write(`decommission of ${self} aborted: it owns its partitions again\n`);
      return;
    }
    if (!flags.json) io.stdout.write(`decommissioning ${self}: its partitions go to their next owners\n`);
    if (!flags.wait) return;
    const others = before.members.filter((m) => m.id !== self && m.http !== '').map((m) => m.http);
    await follow(context, flags, `decommission ${self}`, async () => {
      // The node exits once its decommission committed: then ask another member.
      const view = (await readCluster(flags, flags.node)) ?? (await firstAnswer(flags, others));
      if (view === undefined) throw new CliError(CLI_ERROR_CODES.UNREACHABLE, `neither ${self} nor any other member answers`);
      return { view, done: ringStatus(view, self) === 'left' };
    });
    if (!flags.json) io.stdout.write(`${self} is decommissioned: its partitions are on their new owners and its process exits\n`);
  });

  const remove = program
    .command('remove')
    .argument('<node-id>', 'the member to remove (it must be down)')
    .summary('remove a member that will not come back; its partitions are copied to new owners from the other replicas')
    .description(
      'for a member that is down for good (a lost machine): the node given with --node records the removal, the partitions the member ' +
        'owned are copied to their next owners from the surviving replicas, and the member is removed. Refused while the member is alive ' +
        '(decommission it instead). A member being removed that comes back stops itself. Waits for the end unless --no-wait',
    );
  addWaitOptions(addNodeOption(remove));
  remove.action(async (nodeId: string, flags: WaitFlags) => {
    const client = clientFor(flags);
    const answer = await client.remove(nodeId);
    if (flags.json) io.stdout.write(`${JSON.stringify(answer)}\n`);
    else io.stdout.write(`removing ${nodeId}: its partitions are copied to new owners from the other replicas\n`);
    if (!flags.wait) return;
    await follow(context, flags, `remove ${nodeId}`, async () => {
      const view = await client.cluster();
      return { view, done: ringStatus(view, nodeId) === 'removed' };
    });
    if (!flags.json) io.stdout.write(`${nodeId} is removed: every partition it owned has its replicas again\n`);
  });
}

function addWaitOptions(command: Command): Command {
  return command
    .addOption(envOption('--no-wait', 'return once the change is recorded, without following it'))
    .addOption(envOption('--timeout-s <seconds>', 'give up following after this long (the change goes on)').default(3600).argParser(parsePositiveInt))
    .addOption(envOption('--json', 'print the node\'s answer as JSON').default(false));
}

interface Step {
  readonly view: ClusterView;
  readonly done: boolean;
}

/** Polls `step` until done, drawing the change's partitions on a terminal; fails after `--timeout-s`. */
async function follow(context: CommandContext, flags: WaitFlags, label: string, step: () => Promise<Step>): Promise<void> {
  const { io } = context;
  const started = Date.now();
  const bar = !flags.json && io.stderr.isTTY === true ? new ProgressBar(io.stderr, label, started) : undefined;
  try {
    for (;;) {
      const { view, done } = await step();
      const change = changeOf(view);
      if (change !== undefined) bar?.update(change.done, change.total, Date.now());
      if (done) return;
      if (Date.now() - started > flags.timeoutS * 1000) {
        throw new CliError(CLI_ERROR_CODES.TIMEOUT, `${label}: not finished after ${flags.timeoutS} s; it goes on — follow it with hearsay status`, { exitCode: EXIT_FAILURE });
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    bar?.clear();
  }
}

function topologyOf(view: ClusterView): Record<string, unknown> | undefined {
  const t = (view as { topology?: unknown }).topology;
  return typeof t === 'object' && t !== null ? (t as Record<string, unknown>) : undefined;
}

/** The status of `id` in the ownership table a node reports. */
export function ringStatus(view: ClusterView, id: string): string | undefined {
  const ring = topologyOf(view)?.['ring'];
  if (!Array.isArray(ring)) return undefined;
  const entry = ring.find((e: unknown) => (e as { id?: unknown }).id === id) as { status?: unknown } | undefined;
  return typeof entry?.status === 'string' ? entry.status : undefined;
}

/** The active change's progress in a cluster view. */
export function changeOf(view: ClusterView): { kind: string; member: string; done: number; total: number; waitingFor: string[] } | undefined {
  const change = topologyOf(view)?.['change'] as Record<string, unknown> | null | undefined;
  if (change === null || change === undefined || typeof change !== 'object') return undefined;
  return {
    kind: String(change['kind']),
    member: String(change['member']),
    done: Number(change['done'] ?? 0),
    total: Number(change['total'] ?? 0),
    waitingFor: Array.isArray(change['waitingFor']) ? (change['waitingFor'] as unknown[]).map(String) : [],
  };
}

/** The cluster view of the member at `url`, reached with the same token and CA as `--node`. */
async function readCluster(flags: NodeFlag, url: string): Promise<ClusterView | undefined> {
  try {
    return await clientFor({ ...flags, node: url }).cluster();
  } catch (error) {
    if (error instanceof HearsayError) return undefined;
    throw error;
  }
}

async function firstAnswer(flags: NodeFlag, urls: readonly string[]): Promise<ClusterView | undefined> {
  for (const url of urls) {
    const view = await readCluster(flags, url);
    if (view !== undefined) return view;
  }
  return undefined;
}
