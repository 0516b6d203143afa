import type { LevelWithSilent } from 'pino';
import type { ClusterTuning } from '../cluster.ts';
import type { NodeLimits } from '../node.ts';

/**
 * The flags of `hearsay start`, parsed, and what they set. A file of its
 * own: the command (start.ts) and the node it runs (run-node.ts, which start
 * loads only when it runs) both need them, and neither imports the other.
 */
export interface StartFlags {
  readonly dataDir: string;
  readonly host: string;
  readonly httpPort: number;
  readonly gossipPort: number;
  readonly seeds: string[];
  readonly nodeId?: string;
  readonly replace?: string;
  readonly replicationFactor: number;
  readonly clusterKey?: string;
  readonly clusterKeyFile?: string;
  /** Set by the action: the key came from the command line, where every local user sees it. */
  readonly clusterKeyOnCommandLine?: boolean;
  readonly insecure?: boolean;
  readonly authFile?: string;
  readonly openMetrics?: boolean;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsCa?: string;
  readonly tlsVerifyPeers?: boolean;
  readonly maxClockOffsetMs: number;
  readonly acceptClockAhead: boolean;
  readonly logLevel: LevelWithSilent;
  readonly advertiseHost?: string;
  readonly gossipProbeIntervalMs?: number;
  readonly gossipProbeTimeoutMs?: number;
  readonly gossipIntervalMs?: number;
  readonly gossipPushPullIntervalMs?: number;
  readonly requestTimeoutMs?: number;
  readonly handoffIntervalMs?: number;
  readonly hintWindowMs?: number;
  readonly tombstoneGraceMs?: number;
  readonly repairIntervalMs?: number;
  readonly ringSyncIntervalMs?: number;
  readonly streamRateLimitBytesPerSec?: number;
  readonly httpMaxConnections?: number;
  readonly httpIdleTimeoutMs?: number;
  readonly httpHeadersTimeoutMs?: number;
  readonly httpReceiveTimeoutMs?: number;
  readonly httpStallTimeoutMs?: number;
  readonly httpMaxBodyBytesInFlight?: number;
  readonly minFreeDiskBytes?: number;
  readonly internodeMaxBodyBytes?: number;
  readonly peerMaxQueuedBytes?: number;
}

/** The advanced flags that were given, as gossip tuning and cluster config. */
export function tuningOf(flags: StartFlags): ClusterTuning {
  const gossip = defined({
    probeIntervalMs: flags.gossipProbeIntervalMs,
    probeTimeoutMs: flags.gossipProbeTimeoutMs,
    gossipIntervalMs: flags.gossipIntervalMs,
    pushPullIntervalMs: flags.gossipPushPullIntervalMs,
  });
  const config = defined({
    requestTimeoutMs: flags.requestTimeoutMs,
    handoffIntervalMs: flags.handoffIntervalMs,
    hintWindowMs: flags.hintWindowMs,
    tombstoneGraceMs: flags.tombstoneGraceMs,
    repairPartitionIntervalMs: flags.repairIntervalMs,
    ringSyncIntervalMs: flags.ringSyncIntervalMs,
    streamRateLimitBytesPerSec: flags.streamRateLimitBytesPerSec,
    internodeMaxBodyBytes: flags.internodeMaxBodyBytes,
    peerMaxQueuedBytes: flags.peerMaxQueuedBytes,
  });
  return {
    ...(Object.keys(gossip).length === 0 ? {} : { gossip }),
    ...(Object.keys(config).length === 0 ? {} : { config }),
    ...(flags.advertiseHost === undefined ? {} : { advertiseHost: flags.advertiseHost }),
    ...(flags.replace === undefined ? {} : { replace: true }),
  };
}

function defined(fields: Record<string, number | undefined>): Record<string, number> {
  return Object.fromEntries(Object.entries(fields).filter((entry): entry is [string, number] => entry[1] !== undefined));
}

/** The HTTP and disk limits that were given. */
export function limitsOf(flags: StartFlags): Partial<NodeLimits> {
  return defined({
    maxConnections: flags.httpMaxConnections,
    idleTimeoutMs: flags.httpIdleTimeoutMs,
    headersTimeoutMs: flags.httpHeadersTimeoutMs,
    receiveTimeoutMs: flags.httpReceiveTimeoutMs,
    stallTimeoutMs: flags.httpStallTimeoutMs,
    maxBodyBytesInFlight: flags.httpMaxBodyBytesInFlight,
    minFreeDiskBytes: flags.minFreeDiskBytes,
  });
}
