import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Level } from 'level';
import {
  fileTopologyPersistence,
  hintsSublevel,
  startClusterService,
  toClusterKeys,
  type ClockVerdict,
  type ClusterConfig,
  type ClusterService,
  type GossipMembership,
  type TopologyExit,
  type TopologyPersistence,
} from '@hearsay/cluster';
import type { GossipEvent, GossipLogger, GossipRuntime, GossipTuning } from '@hearsay/gossip';
import type { AdminRequest, GetOptions, KvService, RepairLine, RepairOptions } from '@hearsay/service';
import { CLI_ERROR_CODES, CliError, describe, EXIT_USAGE, hasCode } from './errors.ts';
import type { Logger } from './logger.ts';
import type { NodeService, ServiceFactory } from './node.ts';

/** Where a node keeps its hints (a LevelDB of its own beside `store`) and its gossip generation, inside the data dir. */
export const HINTS_SUBDIR = 'hints';
export const GOSSIP_GENERATION_FILE = 'gossip-generation';
/** The ownership table this node last acknowledged, and the progress of what it fills (docs/topology.md). */
export const RING_FILE = 'ring.json';

/** Advanced settings of a cluster node; unset ones keep the defaults of `@hearsay/gossip` and `@hearsay/cluster`. */
export interface ClusterTuning {
  readonly gossip?: Partial<GossipTuning>;
  readonly config?: Partial<ClusterConfig>;
  /** Host other nodes reach this one at, when `host` is a wildcard such as 0.0.0.0. */
  readonly advertiseHost?: string;
  /** `--replace`: a new data dir takes over the dead member with its node id. */
  readonly replace?: boolean;
  /** The node must stop: decommissioned, removed, or its id taken over (`runNode` stops it and picks the exit status). */
  readonly onExit?: (exit: TopologyExit) => void;
}

/**
 * A data dir whose saved ring lists other members belongs to a cluster: without
 * a key it could reach none of them (its gossip and internode API are closed),
 * so it would coordinate with none of its replicas. Refused like seeds without
 * a key (exit 2), with what to do.
 */
async function refuseKeylessMember(persistence: TopologyPersistence, nodeId: string, dataDir: string): Promise<void> {
  const saved = await persistence.load().catch(() => undefined);
  if (saved === undefined) return;
  const others = [...saved.ring.values()].filter((e) => e.id !== nodeId && e.status !== 'left' && e.status !== 'removed').map((e) => e.id);
  if (others.length === 0) return;
  throw new CliError(
    CLI_ERROR_CODES.CLUSTER_KEY_REQUIRED,
    `data dir ${dataDir} is a member of a cluster with ${others.sort().join(', ')} (its ${RING_FILE}), but this node has no cluster key: ` +
      'start it with the cluster\'s key (--cluster-key-file, or HEARSAY_CLUSTER_KEY); --insecure runs without one (a trusted test network only)',
    { exitCode: EXIT_USAGE },
  );
}

/**
 * The `createService` of `hearsay start`: the node becomes a cluster member.
 * Gossip listens on `options.gossipPort` (UDP and TCP) and joins through
 * `options.seeds` (none: a one-node cluster others can join), hints live in
 * `<dataDir>/hints`, the internode routes are mounted under `/internal`, and
 * `options.clusterKey` signs internode HTTP and encrypts gossip.
 *
 * Without a key (and without `options.insecure`) the node is closed: no
 * internode routes (`/internal/*` answers 404), and its gossip is encrypted
 * with a random key nobody else has, so no node can join it. The CLI refuses
 * seeds without a key, so such a node always starts alone.
 */
export function createClusterNodeService(tuning: ClusterTuning = {}): ServiceFactory {
  return async ({ store, load, dataDir, httpUrl, options, logger }) => {
    const replicationFactor = options.replicationFactor;
    const givenKey = toClusterKeys(options.clusterKey);
    const internode = givenKey !== undefined ? 'cluster-key' : options.insecure === true ? 'insecure' : 'closed';
    const persistence = fileTopologyPersistence(join(dataDir, RING_FILE));
    if (internode === 'closed') await refuseKeylessMember(persistence, store.nodeId, dataDir);
    let hintsLevel: Level<string, Uint8Array>;
    try {
      hintsLevel = new Level<string, Uint8Array>(join(dataDir, HINTS_SUBDIR), { valueEncoding: 'view' });
      await hintsLevel.open();
    } catch (error) {
      throw new CliError(CLI_ERROR_CODES.DATA_DIR_UNUSABLE, `cannot open the hints in data dir ${dataDir}: ${describe(error)}`, { cause: error });
    }
    // Closed: a key that never leaves this process keeps every other node out of its gossip.
    const clusterKey = internode === 'closed' ? randomBytes(32).toString('base64') : givenKey;
    let cluster: ClusterService;
    let unsubscribe = (): void => {};
    try {
      cluster = await startClusterService({
        store,
        hintsDb: hintsSublevel(hintsLevel as never),
        httpUrl: advertisedUrl(httpUrl, tuning.advertiseHost),
        gossip: {
          host: options.host,
          port: options.gossipPort,
          seeds: options.seeds,
          generationFile: join(dataDir, GOSSIP_GENERATION_FILE),
          logger: gossipLogger(logger),
          ...(tuning.advertiseHost === undefined ? {} : { advertiseHost: tuning.advertiseHost }),
          ...(tuning.gossip === undefined ? {} : { config: tuning.gossip }),
        },
        ...(clusterKey === undefined ? {} : { clusterKey }),
        ...(options.tls === undefined ? {} : { tls: { secureContext: () => options.tls!.clientContext() } }),
        config: { ...tuning.config, replicationFactor },
        load,
        topology: {
          persistence,
          ...(tuning.replace === undefined ? {} : { replace: tuning.replace }),
          onEvent: (event) => (event.level === 'warn' ? logger.warn.bind(logger) : logger.info.bind(logger))({ ...event.fields, component: 'topology' }, event.message),
          ...(tuning.onExit === undefined ? {} : { onExit: tuning.onExit }),
        },
        onError: (what, error) => logger.warn({ err: error }, what),
        onClockChange: (verdict, previous) => logClock(logger, verdict, previous),
        onClockJump: (jumpMs) =>
          logger.warn(
            { clockJumpMs: jumpMs },
            `this machine's clock jumped ${jumpMs > 0 ? 'forward' : 'back'} by ${Math.abs(Math.round(jumpMs))} ms: clock offsets are measured again before this node coordinates writes`,
          ),
        watchGossip: (gossip, membership) => {
          unsubscribe = logMembership(gossip, membership, logger);
        },
      });
    } catch (error) {
      await hintsLevel.close().catch(() => undefined);
      if (hasCode(error, 'EADDRINUSE')) {
        throw new CliError(
          CLI_ERROR_CODES.PORT_IN_USE,
          `gossip port ${options.gossipPort} is already in use on ${options.host}; pick another with --gossip-port`,
          { cause: error },
        );
      }
      if (hasCode(error, 'EADDRNOTAVAIL') || hasCode(error, 'EACCES')) {
        throw new CliError(CLI_ERROR_CODES.ADDRESS_UNAVAILABLE, `cannot bind gossip on ${options.host}:${options.gossipPort}: ${describe(error)}`, { cause: error });
      }
      if (hasCode(error, 'BAD_CONFIG')) {
        throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, `cluster settings: ${describe(error)}`, { cause: error });
      }
      throw error;
    }

    if (tuning.advertiseHost === undefined && WILDCARD_HOSTS.has(options.host)) {
      logger.warn(
        { host: options.host },
        `listening on the wildcard ${options.host}: other nodes are told to reach this one at ${httpUrl}; set --advertise-host to an address they can reach`,
      );
    }
    logger.info(
      {
        gossip: cluster.gossip.localAddress,
        seeds: options.seeds,
        replicationFactor,
        internode,
      },
      options.seeds.length === 0
        ? internode === 'closed'
          ? `gossip on ${cluster.gossip.localAddress}: a cluster of one that no other node can join (it has no cluster key)`
          : `gossip on ${cluster.gossip.localAddress}: a new cluster of one (others join with --seeds ${cluster.gossip.localAddress})`
        : `gossip on ${cluster.gossip.localAddress}: joining through ${options.seeds.join(', ')}`,
    );
    if (internode === 'insecure') {
      logger.warn({ internode }, '--insecure: no cluster key; anyone who reaches this node\'s ports can join the cluster, read every key and write any value through the internode API');
    } else if (internode === 'closed') {
      logger.info({ internode }, 'no cluster key: this node serves alone; no node can join it and /internal/* answers 404 (give every node the same --cluster-key-file to form a cluster)');
    }
    const nodeService: NodeService = {
      service: loggedRepair(cluster.service, logger, () => cluster.node.antiEntropy.metrics()),
      ...(internode === 'closed' ? {} : { internal: cluster.internal }),
      mode: 'cluster',
      internode,
      async stop() {
        unsubscribe();
        logger.info('leaving the cluster');
        try {
          await cluster.stop();
        } finally {
          await hintsLevel.close();
        }
      },
    };
    return nodeService;
  };
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * Logs a change of this node's clock verdict: fenced (skewed, or its clock
 * ahead) at error — it refuses writes until that changes —, not verified at
 * info (normal while it starts or measures again), back in bounds at info.
 */
function logClock(logger: Logger, verdict: ClockVerdict, previous: ClockVerdict): void {
  const fields = {
    clockState: verdict.state,
    previousClockState: previous.state,
    maxClockOffsetMs: verdict.maxOffsetMs,
    ...(verdict.offsetMs === undefined ? {} : { clockOffsetMs: verdict.offsetMs, clockErrorMs: verdict.errorMs }),
    reachable: verdict.reachable,
    within: verdict.within,
    beyond: verdict.beyond,
  };
  if (verdict.state === 'skewed' || verdict.state === 'ahead') logger.error(fields, `fenced, refusing writes: ${verdict.reason ?? verdict.state}`);
  else if (verdict.state === 'unverified') logger.info(fields, `not coordinating writes yet: ${verdict.reason ?? verdict.state}`);
  else logger.info(fields, `clock verified within the maximum offset (${verdict.maxOffsetMs} ms) of the members it reaches: coordinating writes`);
}

/** Logs the membership changes gossip reports: who joined, who is suspected, dead, back, or left. */
function logMembership(gossip: GossipRuntime, membership: GossipMembership, logger: Logger): () => void {
  const selfId = gossip.id;
  let joined = false;
  const listener = (event: GossipEvent): void => {
    const { member } = event;
    if (member.id === selfId || event.type === 'update') return;
    const fields = { member: member.id, address: member.address, event: event.type };
    if (event.type === 'join' && !joined && membership.ready?.() !== false) {
      joined = true;
      logger.info(fields, `joined the cluster: saw ${member.id} at ${member.address}`);
    }
    const alive = membership.members().filter((m) => m.state === 'alive').length;
    const message = `member ${member.id} ${event.type === 'join' ? 'joined' : `is ${event.type}`} (${alive} alive)`;
    if (event.type === 'dead' || event.type === 'suspect') logger.warn(fields, message);
    else logger.info(fields, message);
  };
  return gossip.on('event', listener);
}

/** The coordinator with its repair runs logged (start, and the summary at the end) and repair's figures in /metrics. */
function loggedRepair(service: KvService, logger: Logger, repairMetrics: () => string): KvService {
  return {
    get: (key, options) => service.get(key, options),
    // Kept: the app answers a GET synchronously through it (the hot path of a one-node cluster).
    ...(service.getNow === undefined ? {} : { getNow: (key: string, options: GetOptions) => service.getNow!(key, options) }),
    put: (key, value, options) => service.put(key, value, options),
    delete: (key, options) => service.delete(key, options),
    list: (options) => service.list(options),
    cluster: () => service.cluster(),
    health: () => service.health(),
    metrics: () => (service.metrics === undefined ? '' : service.metrics()) + repairMetrics(),
    ...(service.admin === undefined
      ? {}
      : {
          async admin(request: AdminRequest) {
            logger.info({ request }, request.type === 'decommission' ? `decommission ${request.abort ? 'abort ' : ''}requested` : `removal of ${request.node} requested`);
            return service.admin!(request);
          },
        }),
    async *repair(options: RepairOptions): AsyncIterable<RepairLine> {
      logger.info('repair requested: every partition this node replicates');
      for await (const line of service.repair(options)) {
        if (line.type === 'summary') {
          const { type: _type, ...summary } = line;
          (line.inSync ? logger.info.bind(logger) : logger.warn.bind(logger))(summary, `repair finished: ${line.inSync ? 'in sync' : 'NOT in sync'}`);
        }
        yield line;
      }
    },
  };
}

function gossipLogger(logger: Logger): GossipLogger {
  const child = logger.child({ component: 'gossip' });
  return {
    debug: (message, fields) => child.debug(fields ?? {}, message),
    info: (message, fields) => child.info(fields ?? {}, message),
    warn: (message, fields) => child.warn(fields ?? {}, message),
    error: (message, fields) => child.error(fields ?? {}, message),
  };
}

/** With a wildcard bind address the URL others should use names the advertised host. */
function advertisedUrl(httpUrl: string, advertiseHost: string | undefined): string {
  if (advertiseHost === undefined) return httpUrl;
  const url = new URL(httpUrl);
  url.hostname = advertiseHost.includes(':') ? `[${advertiseHost}]` : advertiseHost;
  return url.origin;
}
