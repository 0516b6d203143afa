/**
 * What `hearsay start` does once its flags are parsed: open the node, serve
 * until a stop signal, stop cleanly. Loaded by the command's action, so the
 * commands that only talk to a node never load the server packages.
 */
import { isValidNodeId } from '@hearsay/storage';
import { createClusterNodeService, type ClusterTuning } from '../cluster.ts';
import { CLI_ERROR_CODES, CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import { startNode, type NodeOptions, type RunningNode } from '../node.ts';
import { onStopSignals } from '../stop-signals.ts';
import { limitsOf, type StartFlags } from './start.ts';

function flagsToOptions(flags: StartFlags, tuning: ClusterTuning, logger: Logger): NodeOptions {
  return {
    dataDir: flags.dataDir,
    host: flags.host,
    httpPort: flags.httpPort,
    gossipPort: flags.gossipPort,
    seeds: flags.seeds,
    replicationFactor: flags.replicationFactor,
    logger,
    createService: createClusterNodeService(tuning),
    limits: limitsOf(flags),
    ...(flags.nodeId === undefined ? {} : { nodeId: flags.nodeId }),
    ...(flags.clusterKey === undefined ? {} : { clusterKey: flags.clusterKey }),
  };
}

/**
 * Starts the node and resolves with the exit status once a signal (or the
 * launcher going away) has stopped it. The handlers are in place before the
 * store opens, so a Ctrl-C during start-up still ends in a clean stop.
 */
export async function runNode(flags: StartFlags, tuning: ClusterTuning, pretty: boolean): Promise<number> {
  if (flags.nodeId !== undefined && !isValidNodeId(flags.nodeId)) {
    throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, `--node-id ${JSON.stringify(flags.nodeId)}: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -`, { exitCode: EXIT_USAGE });
  }
  const logger = createLogger({ level: flags.logLevel, pretty });
  const options = flagsToOptions(flags, tuning, logger);
  // A bug that escapes every handler leaves the node in an unknown state: say so in the log and exit.
  const onFatal = (error: unknown): void => {
    logger.fatal({ err: error }, 'uncaught error; exiting');
    process.exit(EXIT_FAILURE);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  let requestStop!: (reason: string) => void;
  const stopRequested = new Promise<string>((resolve) => (requestStop = resolve));
  let stopped = false;
  const signals = onStopSignals({
    onStop(reason) {
      if (reason.kind === 'signal') {
        logger.info({ signal: reason.signal }, `received ${reason.signal}`);
        requestStop(reason.signal);
      } else {
        logger.warn(
          { launcherPid: reason.pid, launcher: reason.command },
          `the process that launched this node (${reason.command}, pid ${reason.pid}) exited; stopping as on SIGTERM`,
        );
        requestStop('launcher exited');
      }
    },
    onDuplicate(signal) {
      logger.debug({ signal }, `${signal} right after the first signal (a launcher forwarding it): already stopping`);
    },
    onForce(signal) {
      if (stopped) return;
      logger.warn({ signal }, `second ${signal}: exiting without waiting for requests in flight`);
      process.exit(EXIT_FAILURE);
    },
  });

  let node: RunningNode;
  try {
    node = await startNode(options);
  } catch (error) {
    signals.dispose();
    if (error instanceof CliError) {
      logger.fatal({ code: error.code }, error.message);
      return error.exitCode;
    }
    logger.fatal({ err: error }, 'node failed to start');
    return EXIT_FAILURE;
  }

  const reason = await stopRequested;
  let exitCode: number = EXIT_OK;
  try {
    await node.stop(reason);
  } catch (error) {
    logger.error({ err: error }, 'shutdown failed');
    exitCode = EXIT_FAILURE;
  }
  // The handlers stay until the process exits: a late duplicate must not kill it by the default action.
  stopped = true;
  logger.info({ exitCode }, `exiting with status ${exitCode}`);
  return exitCode;
}
