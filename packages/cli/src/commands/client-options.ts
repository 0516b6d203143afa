import type { Command } from 'commander';
import { DEFAULT_BASE_URL, HearsayClient, type Consistency } from '@hearsay/client';
import { envOption, parseNodeUrl } from '../options.ts';

export interface NodeFlag {
  readonly node: string;
}

export interface ConsistencyFlag {
  readonly consistency?: Consistency;
}

export function addNodeOption(command: Command): Command {
  return command.addOption(
    envOption('--node <url>', 'base URL of the node to talk to (any node of a cluster)').default(DEFAULT_BASE_URL).argParser(parseNodeUrl),
  );
}

export function addConsistencyOption(command: Command): Command {
  return command.addOption(
    envOption('--consistency <level>', 'replicas that must answer: one, quorum or all (server default: quorum)').choices(['one', 'quorum', 'all']),
  );
}

export function clientFor(flags: NodeFlag & ConsistencyFlag): HearsayClient {
  return new HearsayClient(flags.consistency === undefined ? { baseUrl: flags.node } : { baseUrl: flags.node, consistency: flags.consistency });
}
