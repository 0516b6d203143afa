/**
 * What `hearsay start` does once its flags are parsed: open the node, serve
 * until a stop signal, stop cleanly. Loaded by the command's action, so the
 * commands that only talk to a node never load the server packages.
 */
import { isValidNodeId } from '@hearsay/storage';
import { AuthFile } from '../auth-file.ts';
import { createClusterNodeService, type ClusterTuning } from '../cluster.ts';
import { KEY_CHARS_MIN_ADVISED, keyRequiredMessage, readKeyFile } from '../cluster-key.ts';
import { CLI_ERROR_CODES, CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import { startNode, type NodeOptions, type RunningNode } from '../node.ts';
import { onStopSignals } from '../stop-signals.ts';
import { limitsOf, type StartFlags } from './start.ts';

/** Owner-only: files and dirs the node creates (store, hints, gossip generation) are 0600 and 0700. */
export const NODE_UMASK = 0o077;

interface Secrets {
  readonly clusterKey: string | undefined;
  readonly auth: AuthFile | undefined;
}

function flagsToOptions(flags: StartFlags, tuning: ClusterTuning, logger: Logger, secrets: Secrets): NodeOptions {
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
    ...(secrets.clusterKey === undefined ? {} : { clusterKey: secrets.clusterKey }),
    ...(secrets.auth === undefined ? {} : { auth: secrets.auth }),
    insecure: flags.insecure === true,
    openMetrics: flags.openMetrics === true,
  };
}

/** The cluster key from its file or flag, refusing what cannot form a safe cluster (exit 2). */
async function clusterKeyOf(flags: StartFlags): Promise<string | undefined> {
  let key = flags.clusterKey === '' ? undefined : flags.clusterKey;
  if (flags.clusterKeyFile !== undefined) {
    const keys = await readKeyFile(flags.clusterKeyFile);
    if (keys.length > 1) {
      throw new CliError(CLI_ERROR_CODES.CLUSTER_KEY_INVALID, `cluster key file ${flags.clusterKeyFile} holds ${keys.length} keys; it takes one`, { exitCode: EXIT_USAGE });
    }
    key = keys[0];
  }
  if (key === undefined && flags.seeds.length > 0 && flags.insecure !== true) {
    throw new CliError(CLI_ERROR_CODES.CLUSTER_KEY_REQUIRED, keyRequiredMessage(), { exitCode: EXIT_USAGE });
  }
  return key;
}

/** Says at every start what weakens the node's protection. */
function warnAboutSecrets(flags: StartFlags, clusterKey: string | undefined, logger: Logger): void {
  if (clusterKey !== undefined && flags.insecure === true) logger.warn('--insecure is ignored: the node has a cluster key');
  if (flags.clusterKeyOnCommandLine === true) {
    logger.warn('the cluster key is on the command line, where every local user can read it (ps, /proc); use --cluster-key-file or HEARSAY_CLUSTER_KEY');
  }
  if (clusterKey !== undefined && clusterKey.length < KEY_CHARS_MIN_ADVISED) {
    logger.warn({ keyChars: clusterKey.length }, `the cluster key is a short passphrase (${clusterKey.length} characters); \`hearsay key generate\` makes a random 256-bit key`);
  }
  if (flags.openMetrics === true && flags.authFile === undefined) logger.warn('--open-metrics does nothing without --auth-file: every route is open');
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
  // Before anything is opened or created: the store, hints and generation file are private from the start.
  process.umask(NODE_UMASK);
  const clusterKey = await clusterKeyOf(flags);
  const logger = createLogger({ level: flags.logLevel, pretty });
  warnAboutSecrets(flags, clusterKey, logger);
  let auth: AuthFile | undefined;
  if (flags.authFile !== undefined) {
    try {
      auth = await AuthFile.open(flags.authFile, logger);
    } catch (error) {
      if (error instanceof CliError) {
        logger.fatal({ code: error.code }, error.message);
        return error.exitCode;
      }
      throw error;
    }
    logger.info({ authFile: flags.authFile, tokens: auth.size }, `client tokens from ${flags.authFile}: ${auth.size} tokens; every route but /v1/health needs one`);
  }
  const options = flagsToOptions(flags, tuning, logger, { clusterKey, auth });
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
    auth?.close();
    if (error instanceof CliError) {
      logger.fatal({ code: error.code }, error.message);
      return error.exitCode;
    }
    logger.fatal({ err: error }, 'node failed to start');
    return EXIT_FAILURE;
  }

  if (auth !== undefined) auth.register(node.app.registry);

  const reason = await stopRequested;
  auth?.close();
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
