import type { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { CliError, EXIT_FAILURE, EXIT_OK } from '../errors.ts';
import { createLogger, LOG_LEVELS, type Logger } from '../logger.ts';
import { startNode, type NodeOptions, type RunningNode } from '../node.ts';
import { envOption, parseNodeId, parsePort, parsePositiveInt, parseSeeds } from '../options.ts';
import type { CommandContext } from '../program.ts';

interface StartFlags {
  readonly dataDir: string;
  readonly host: string;
  readonly httpPort: number;
  readonly gossipPort: number;
  readonly seeds: string[];
  readonly nodeId?: string;
  readonly replicationFactor: number;
  readonly clusterKey?: string;
  readonly logLevel: LevelWithSilent;
}

const CLUSTER_NOTE = '(cluster setting: accepted now, takes effect with the cluster package)';

export function registerStartCommand(program: Command, context: CommandContext): void {
  program
    .command('start')
    .summary('run a node on this machine (serves the HTTP API until SIGINT/SIGTERM)')
    .description(
      'run a node: open the store in the data dir and serve the HTTP API until SIGINT/SIGTERM, ' +
        'then finish requests in flight, close the store and exit 0. Logs go to stdout (JSON, or readable lines on a terminal)',
    )
    .addOption(envOption('--data-dir <dir>', 'where the node keeps its data, id and clock (created when missing)').default('./data'))
    .addOption(envOption('--host <host>', 'address to listen on').default('127.0.0.1'))
    .addOption(envOption('--http-port <port>', 'HTTP port (0 picks a free one)').default(7000).argParser(parsePort))
    .addOption(envOption('--gossip-port <port>', `gossip port, UDP and TCP ${CLUSTER_NOTE}`).default(7946).argParser(parsePort))
    .addOption(envOption('--seeds <host:port,...>', `gossip addresses of nodes to join ${CLUSTER_NOTE}`).default([], 'none').argParser(parseSeeds))
    .addOption(envOption('--node-id <id>', 'id of the node: a new data dir takes it, an existing one must have been created with it (default: generated once, kept in the data dir)').argParser(parseNodeId))
    .addOption(
      envOption('--replication-factor <n>', `replicas per key, capped at the member count ${CLUSTER_NOTE}`).default(3).argParser(parsePositiveInt),
    )
    .addOption(envOption('--cluster-key <key>', `shared secret of the cluster's gossip ${CLUSTER_NOTE}`))
    .addOption(envOption('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .action(async (flags: StartFlags) => {
      const logger = createLogger({ level: flags.logLevel, pretty: context.io.stdout.isTTY === true });
      context.exitCode = await runNode(flagsToOptions(flags, logger), logger);
    });
}

function flagsToOptions(flags: StartFlags, logger: Logger): NodeOptions {
  return {
    dataDir: flags.dataDir,
    host: flags.host,
    httpPort: flags.httpPort,
    gossipPort: flags.gossipPort,
    seeds: flags.seeds,
    replicationFactor: flags.replicationFactor,
    logger,
    ...(flags.nodeId === undefined ? {} : { nodeId: flags.nodeId }),
    ...(flags.clusterKey === undefined ? {} : { clusterKey: flags.clusterKey }),
  };
}

/** Starts the node and resolves with the exit status once a signal has stopped it. */
async function runNode(options: NodeOptions, logger: Logger): Promise<number> {
  // A bug that escapes every handler leaves the node in an unknown state: say so in the log and exit.
  const onFatal = (error: unknown): void => {
    logger.fatal({ err: error }, 'uncaught error; exiting');
    process.exit(EXIT_FAILURE);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  let node: RunningNode;
  try {
    node = await startNode(options);
  } catch (error) {
    if (error instanceof CliError) {
      logger.fatal({ code: error.code }, error.message);
      return error.exitCode;
    }
    logger.fatal({ err: error }, 'node failed to start');
    return EXIT_FAILURE;
  }

  const stopped = new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        logger.warn({ signal }, 'second signal: exiting without waiting for requests in flight');
        process.exit(EXIT_FAILURE);
      }
      signalled = true;
      logger.info({ signal }, `received ${signal}`);
      node.stop(signal).then(
        () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve(EXIT_OK);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolve(EXIT_FAILURE);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return stopped;
}
