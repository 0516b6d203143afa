import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_BASE_URL, HearsayClient, type Consistency } from '@hearsay/client';
import { nodeFetch } from '@hearsay/client/node';
import { CLI_ERROR_CODES, CliError, describe, EXIT_USAGE } from '../errors.ts';
import { envOption, parseNodeUrl } from '../options.ts';

export interface NodeFlag {
  readonly node: string;
  readonly token?: string;
  readonly caFile?: string;
}

export interface ConsistencyFlag {
  readonly consistency?: Consistency;
}

/** `--node` and what reaching it takes (`--token`). */
export function addNodeOption(command: Command): Command {
  return command
    .addOption(envOption('--node <url>', 'base URL of the node to talk to (any node of a cluster)').default(DEFAULT_BASE_URL).argParser(parseNodeUrl))
    .addOption(envOption('--token <token>', 'client token for a node started with --auth-file (hearsay token create); prefer HEARSAY_TOKEN, which ps does not show'))
    .addOption(envOption('--ca-file <file>', "PEM CA certificate(s) to trust for an https:// node (the CA that signed the node's --tls-cert; default: the system's)"));
}

export function addConsistencyOption(command: Command): Command {
  return command.addOption(
    envOption('--consistency <level>', 'replicas that must answer: one, quorum or all (server default: quorum)').choices(['one', 'quorum', 'all']),
  );
}

export function clientFor(flags: NodeFlag & ConsistencyFlag): HearsayClient {
  return new HearsayClient({
    baseUrl: flags.node,
    ...(flags.caFile === undefined || flags.caFile === '' ? {} : { fetch: nodeFetch({ ca: readCaFile(flags.caFile), keepAlive: false }) }),
    ...(flags.consistency === undefined ? {} : { consistency: flags.consistency }),
    ...(flags.token === undefined || flags.token === '' ? {} : { token: flags.token }),
  });
}

function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CliError(CLI_ERROR_CODES.FILE_UNREADABLE, `cannot read --ca-file ${path}: ${describe(error)}`, { cause: error, exitCode: EXIT_USAGE });
  }
}
