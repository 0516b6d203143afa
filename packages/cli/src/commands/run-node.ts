/**
 * What `hearsay start` does once its flags are parsed: open the node, serve
 * until a stop signal, stop cleanly. Loaded by the command's action, so the
 * commands that only talk to a node never load the server packages.
 */
import { ClusterKeys } from '@hearsay/cluster';
import { isValidNodeId } from '@hearsay/storage';
import { AuthFile } from '../auth-file.ts';
import { createClusterNodeService, type ClusterTuning } from '../cluster.ts';
import { ClusterKeyFile, KEY_CHARS_MIN_ADVISED, keyRequiredMessage } from '../cluster-key.ts';
import { CLI_ERROR_CODES, CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import { startNode, type NodeOptions, type RunningNode } from '../node.ts';
import { onStopSignals } from '../stop-signals.ts';
import { TlsMaterial } from '../tls-files.ts';
import type { TopologyExit } from '@hearsay/cluster';
import { limitsOf, type StartFlags } from './start-flags.ts';

/** Owner-only: files and dirs the node creates (store, hints, gossip generation) are 0600 and 0700. */
export const NODE_UMASK = 0o077;

/** What the node reads from secret files, each reloaded in place until `close`. */
interface Secrets {
  readonly clusterKey: ClusterKeys | undefined;
  readonly keyFile: ClusterKeyFile | undefined;
  readonly auth: AuthFile | undefined;
  readonly tls: TlsMaterial | undefined;
  close(): void;
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
    maxClockOffsetMs: flags.maxClockOffsetMs,
    acceptClockAhead: flags.acceptClockAhead,
    ...(flags.nodeId === undefined ? {} : { nodeId: flags.nodeId }),
    ...(secrets.clusterKey === undefined ? {} : { clusterKey: secrets.clusterKey }),
    ...(secrets.auth === undefined ? {} : { auth: secrets.auth }),
    ...(secrets.tls === undefined ? {} : { tls: secrets.tls, tlsVerifyPeers: flags.tlsVerifyPeers === true }),
    insecure: flags.insecure === true,
    openMetrics: flags.openMetrics === true,
  };
}

/** Refuses, before anything is read or opened, flags that cannot make a safe node (exit 2). */
function checkSecretFlags(flags: StartFlags): void {
  const hasKey = (flags.clusterKey !== undefined && flags.clusterKey !== '') || flags.clusterKeyFile !== undefined;
  if (!hasKey && flags.seeds.length > 0 && flags.insecure !== true) {
    throw new CliError(CLI_ERROR_CODES.CLUSTER_KEY_REQUIRED, keyRequiredMessage(), { exitCode: EXIT_USAGE });
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, '--tls-cert and --tls-key go together: the certificate and its private key', { exitCode: EXIT_USAGE });
  }
  if (flags.tlsCert === undefined && (flags.tlsCa !== undefined || flags.tlsVerifyPeers === true)) {
    throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, '--tls-ca and --tls-verify-peers need --tls-cert and --tls-key', { exitCode: EXIT_USAGE });
  }
  if (flags.tlsVerifyPeers === true && flags.tlsCa === undefined) {
    throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, '--tls-verify-peers needs --tls-ca: the CA whose certificates peers must show', { exitCode: EXIT_USAGE });
  }
}

/** Opens the key file, the auth file and the TLS files; on a failure closes what it opened and throws its `CliError` (exit 2). */
async function openSecrets(flags: StartFlags, logger: Logger): Promise<Secrets> {
  const opened: Array<{ close(): void }> = [];
  try {
    const keyFile = flags.clusterKeyFile === undefined ? undefined : await ClusterKeyFile.open(flags.clusterKeyFile, logger);
    if (keyFile !== undefined) opened.push(keyFile);
    const auth = flags.authFile === undefined ? undefined : await AuthFile.open(flags.authFile, logger);
    if (auth !== undefined) opened.push(auth);
    const tls =
      flags.tlsCert === undefined || flags.tlsKey === undefined
        ? undefined
        : await TlsMaterial.open({ certFile: flags.tlsCert, keyFile: flags.tlsKey, ...(flags.tlsCa === undefined ? {} : { caFile: flags.tlsCa }) }, logger);
    if (tls !== undefined) opened.push(tls);
    const given = flags.clusterKey === undefined || flags.clusterKey === '' ? undefined : new ClusterKeys([flags.clusterKey]);
    return {
      clusterKey: keyFile?.keys ?? given,
      keyFile,
      auth,
      tls,
      close: () => {
        for (const file of opened) file.close();
      },
    };
  } catch (error) {
    for (const file of opened) file.close();
    throw error;
  }
}

/** Says at every start how the node is protected, and what weakens it. */
function logSecrets(flags: StartFlags, secrets: Secrets, logger: Logger): void {
  const primary = secrets.clusterKey?.primary;
  if (primary !== undefined && flags.insecure === true) logger.warn('--insecure is ignored: the node has a cluster key');
  if (flags.clusterKeyOnCommandLine === true) {
    logger.warn('the cluster key is on the command line, where every local user can read it (ps, /proc); use --cluster-key-file or HEARSAY_CLUSTER_KEY');
  }
  if (primary !== undefined && primary.length < KEY_CHARS_MIN_ADVISED) {
    logger.warn({ keyChars: primary.length }, `the cluster key is a short passphrase (${primary.length} characters); \`hearsay key generate\` makes a random 256-bit key`);
  }
  if (secrets.keyFile !== undefined && secrets.keyFile.keys.all.length > 1) {
    logger.info({ clusterKeyFile: secrets.keyFile.path, accepted: secrets.keyFile.keys.all.length }, `cluster key file holds ${secrets.keyFile.keys.all.length} keys: the first signs, all are accepted (a rotation)`);
  }
  if (flags.openMetrics === true && flags.authFile === undefined) logger.warn('--open-metrics does nothing without --auth-file: every route is open');
  if (secrets.auth !== undefined) {
    logger.info({ authFile: secrets.auth.path, tokens: secrets.auth.size }, `client tokens from ${secrets.auth.path}: ${secrets.auth.size} tokens; every route but /v1/health needs one`);
  }
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
  if (flags.replace !== undefined) {
    if (!isValidNodeId(flags.replace)) {
      throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, `--replace ${JSON.stringify(flags.replace)}: not a node id`, { exitCode: EXIT_USAGE });
    }
    if (flags.nodeId !== undefined && flags.nodeId !== flags.replace) {
      throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, `--replace ${flags.replace} takes that id; --node-id ${flags.nodeId} says another`, { exitCode: EXIT_USAGE });
    }
    if (flags.seeds.length === 0) {
      throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, '--replace needs --seeds: the partitions are streamed from the other members', { exitCode: EXIT_USAGE });
    }
  }
  checkSecretFlags(flags);
  // Before anything is opened or created: the store, hints and generation file are private from the start.
  process.umask(NODE_UMASK);
  const logger = createLogger({ level: flags.logLevel, pretty });
  const secrets = await openSecrets(flags, logger);
  logSecrets(flags, secrets, logger);
  let requestStop!: (reason: string) => void;
  const stopRequested = new Promise<string>((resolve) => (requestStop = resolve));
  /** Set when the topology stopped the node: decommissioned (exit 0), removed or replaced (exit 1). */
  let topologyExit: TopologyExit | undefined;
  const options = flagsToOptions(
    flags.replace === undefined ? flags : { ...flags, nodeId: flags.replace },
    {
      ...tuning,
      onExit(exit) {
        topologyExit = exit;
        (exit.code === 'DECOMMISSIONED' ? logger.info.bind(logger) : logger.error.bind(logger))({ code: exit.code }, exit.message);
        requestStop(exit.code.toLowerCase());
      },
    },
    logger,
    secrets,
  );
  // A bug that escapes every handler leaves the node in an unknown state: say so in the log and exit.
  const onFatal = (error: unknown): void => {
    logger.fatal({ err: error }, 'uncaught error; exiting');
    process.exit(EXIT_FAILURE);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

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
    secrets.close();
    if (error instanceof CliError) {
      logger.fatal({ code: error.code }, error.message);
      return error.exitCode;
    }
    logger.fatal({ err: error }, 'node failed to start');
    return EXIT_FAILURE;
  }

  secrets.auth?.register(node.app.registry);

  const reason = await stopRequested;
  secrets.close();
  let exitCode: number = topologyExit === undefined || topologyExit.code === 'DECOMMISSIONED' ? EXIT_OK : EXIT_FAILURE;
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
