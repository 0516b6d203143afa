import type { Command } from 'commander';
import type { RepairSummary } from '@hearsay/client';
import { CLI_ERROR_CODES, CliError } from '../errors.ts';
import { envOption } from '../options.ts';
import { ProgressBar } from '../progress-bar.ts';
import type { CommandContext } from './context.ts';
import { addNodeOption, clientFor, type NodeFlag } from './client-options.ts';

interface RepairFlags extends NodeFlag {
  readonly json: boolean;
}

export function registerRepairCommand(program: Command, context: CommandContext): void {
  const { io } = context;
  const repair = program
    .command('repair')
    .summary('bring the replicas of the keys a node holds in sync')
    .description(
      'compare the replicas of every key the node holds with Merkle trees and exchange what differs; ' +
        'prints a summary and exits 0 only when the replicas it covered are in sync',
    )
    .addOption(envOption('--json', 'print the progress lines and the summary as NDJSON (the last line is the summary)').default(false));
  addNodeOption(repair);
  repair.action(async (flags: RepairFlags) => {
    const bar = !flags.json && io.stderr.isTTY === true ? new ProgressBar(io.stderr, 'repair', Date.now()) : undefined;
    let summary: RepairSummary | undefined;
    try {
      for await (const line of clientFor(flags).repair()) {
        if (flags.json) io.stdout.write(`${JSON.stringify(line)}\n`);
        if (line.type === 'progress') bar?.update(line.done, line.total, Date.now());
        else summary = line;
      }
    } finally {
      bar?.clear();
    }
    if (summary === undefined) throw new CliError(CLI_ERROR_CODES.NOT_IN_SYNC, 'repair ended without a summary');
    if (!flags.json) io.stdout.write(renderSummary(summary));
    if (!summary.inSync) throw new CliError(CLI_ERROR_CODES.NOT_IN_SYNC, 'the replicas are not in sync after this repair; run it again once the cluster is healthy');
  });
}

export function renderSummary(summary: RepairSummary): string {
  const lines = [
    `repair: ${summary.inSync ? 'in sync' : 'NOT in sync'}`,
    `  ranges compared  ${summary.rangesCompared}${typeof summary['partitions'] === 'number' ? ` (${summary['partitions']} partitions)` : ''}`,
    `  keys sent        ${summary.keysSent} (${formatBytes(summary.bytesSent)})`,
    `  keys received    ${summary.keysReceived} (${formatBytes(summary.bytesReceived)})`,
    `  time             ${(summary.durationMs / 1000).toFixed(2)} s`,
  ];
  const foreign = summary['foreignKeysSent'];
  if (typeof foreign === 'number' && foreign > 0) {
    lines.push(`  handed over      ${foreign} keys of ${String(summary['foreignPartitions'])} partitions this node does not replicate`);
  }
  const purged = summary['tombstonesPurged'];
  if (typeof purged === 'number' && purged > 0) lines.push(`  tombstones purged ${purged}`);
  if (summary.message !== undefined && summary.message !== '') lines.push(`  ${summary.message}`);
  return `${lines.join('\n')}\n`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
