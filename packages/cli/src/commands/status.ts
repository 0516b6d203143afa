import type { Command } from 'commander';
import { HearsayError, type ClusterView, type Health } from '@hearsay/client';
import { EXIT_FAILURE } from '../errors.ts';
import { envOption } from '../options.ts';
import type { CommandContext } from './context.ts';
import { formatTable } from '../table.ts';
import { addNodeOption, clientFor, type NodeFlag } from './client-options.ts';

interface StatusFlags extends NodeFlag {
  readonly json: boolean;
}

export function registerStatusCommand(program: Command, context: CommandContext): void {
  const { io } = context;
  const status = program
    .command('status')
    .summary("show the node's health and the cluster members")
    .description("show the node's health and the cluster members it knows; exit 1 if the node is not serving")
    .addOption(envOption('--json', 'print { "health", "cluster" } as JSON instead of a table').default(false));
  addNodeOption(status);
  status.action(async (flags: StatusFlags) => {
    const client = clientFor(flags);
    // A node that is not serving still answers /v1/health with its reason; keep it and show the members too.
    const health: Health | HearsayError = await client.health().catch((error: unknown) => {
      if (error instanceof HearsayError && error.status === 503) return error;
      throw error;
    });
    const cluster = await client.cluster();
    const serving = !(health instanceof HearsayError) && health.ok;
    if (!serving) context.exitCode = EXIT_FAILURE;

    if (flags.json) {
      const healthJson = health instanceof HearsayError ? { ok: false, code: health.code, reason: health.message } : health;
      io.stdout.write(`${JSON.stringify({ health: healthJson, cluster })}\n`);
      return;
    }
    io.stdout.write(renderStatus(flags.node, health, cluster));
  });
}

export function renderStatus(nodeUrl: string, health: Health | HearsayError, cluster: ClusterView): string {
  const state = health instanceof HearsayError ? `not serving: ${health.message}` : health.ok ? 'serving' : 'not serving';
  const lines = [`node ${cluster.self} at ${nodeUrl}: ${state}`, '', `members (${cluster.members.length}):`];
  const selfClock = cluster.members.find((m) => m.id === cluster.self)?.['clock'] as { state?: unknown; maxOffsetMs?: unknown } | undefined;
  const maxOffsetMs = typeof selfClock?.maxOffsetMs === 'number' ? selfClock.maxOffsetMs : undefined;
  const rows = cluster.members.map((member) => [
    member.id === cluster.self ? `${member.id} (self)` : member.id,
    typeof member['status'] === 'string' && member['status'] !== '' ? `${member.state}/${member['status']}` : member.state,
    member.http,
    member.gossip === '' ? '-' : member.gossip,
    // The cluster reports the partitions each member replicates; show how many.
    Array.isArray(member['partitions']) ? String(member['partitions'].length) : '-',
    typeof member['keys'] === 'number' ? String(member['keys']) : '-',
    String(member.incarnation),
    clockCell(member, member.id === cluster.self ? selfClock : undefined, maxOffsetMs),
  ]);
  lines.push(formatTable(['ID', 'STATE', 'HTTP', 'GOSSIP', 'PARTITIONS', 'KEYS', 'INCARNATION', 'CLOCK'], rows));
  if (maxOffsetMs !== undefined) {
    lines.push('', `CLOCK: each member's clock minus this node's, as gossip measured it (! = beyond the maximum offset of ${maxOffsetMs} ms); for this node, its verdict.`);
  }
  lines.push(...renderChange(cluster));
  return `${lines.join('\n')}\n`;
}

/** A member's clock offset as measured by the node asked (`+12±1 ms`, `!` past the maximum offset), or the node's own verdict. */
function clockCell(member: ClusterView['members'][number], selfClock: { state?: unknown } | undefined, maxOffsetMs: number | undefined): string {
  if (selfClock !== undefined) return typeof selfClock.state === 'string' ? selfClock.state : '-';
  const offset = member['clockOffsetMs'];
  const error = member['clockErrorMs'];
  if (typeof offset !== 'number') return '-';
  const err = typeof error === 'number' ? error : 0;
  const beyond = maxOffsetMs !== undefined && Math.abs(offset) - err > maxOffsetMs;
  return `${offset >= 0 ? '+' : ''}${offset}±${err} ms${beyond ? ' !' : ''}`;
}

interface TransferLine {
  readonly partition: number;
  readonly to: string;
  readonly state: string;
}

/** The membership change in progress, with each receiving member's partitions by state (docs/topology.md). */
export function renderChange(cluster: ClusterView): string[] {
  const topology = (cluster as { topology?: { change?: unknown; transfers?: unknown; queued?: unknown; replacing?: unknown } }).topology;
  if (topology === undefined || topology === null) return [];
  const out: string[] = [];
  const replacing = topology.replacing as { member?: unknown; done?: unknown; total?: unknown } | undefined;
  if (replacing !== undefined && replacing !== null) {
    out.push('', `replacing ${String(replacing.member)}: ${String(replacing.done)} of ${String(replacing.total)} partitions streamed from the other replicas`);
  }
  const change = topology.change as { kind?: unknown; member?: unknown; done?: unknown; total?: unknown; waitingFor?: unknown } | null | undefined;
  if (change !== null && change !== undefined) {
    const waiting = Array.isArray(change.waitingFor) && change.waitingFor.length > 0 ? ` (waiting for ${change.waitingFor.join(', ')} to acknowledge it)` : '';
    out.push('', `change in progress: ${String(change.kind)} of ${String(change.member)}, ${String(change.done)} of ${String(change.total)} partitions streamed${waiting}`);
    const transfers = Array.isArray(topology.transfers) ? (topology.transfers as TransferLine[]) : [];
    const byMember = new Map<string, TransferLine[]>();
    for (const t of transfers) byMember.set(t.to, [...(byMember.get(t.to) ?? []), t]);
    const rows = [...byMember].map(([to, list]) => {
      const of = (state: string): string => ranges(list.filter((t) => t.state === state).map((t) => t.partition));
      return [to, `${list.filter((t) => t.state === 'done').length}/${list.length}`, of('streaming') || '-', of('waiting') || '-', of('done') || '-'];
    });
    if (rows.length > 0) out.push(formatTable(['TO', 'DONE', 'STREAMING', 'WAITING', 'DONE PARTITIONS'], rows));
  }
  const queued = Array.isArray(topology.queued) ? (topology.queued as { kind?: unknown; member?: unknown }[]) : [];
  if (queued.length > 0) out.push(`waiting to start: ${queued.map((q) => `${String(q.kind)} of ${String(q.member)}`).join(', ')}`);
  return out;
}

/** `0-3, 7, 9-12`, cut at 60 characters. */
export function ranges(partitions: readonly number[]): string {
  const sorted = [...partitions].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  const text = parts.join(', ');
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
