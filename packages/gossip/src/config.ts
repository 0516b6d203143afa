// Gossip configuration and its defaults (LAN profile of docs/cli.md: probe
// every 1 s, probe timeout 500 ms, gossip every 200 ms to 3 members).

/** How rumors spread each gossip interval (the three variants the literature compares). */
export type DisseminationMode = 'push' | 'pull' | 'push-pull';

/** Which failure detector runs: SWIM probing + Lifeguard (default) or heartbeats + phi accrual. */
export type DetectorKind = 'swim' | 'phi';

export interface GossipTuning {
  /** Dissemination mode of the periodic gossip round. */
  mode: DisseminationMode;
  detector: DetectorKind;

  /** SWIM: one member is probed per interval (before the Lifeguard multiplier). */
  probeIntervalMs: number;
  /** SWIM: direct ping timeout before indirect probes (before the Lifeguard multiplier). */
  probeTimeoutMs: number;
  /** SWIM: number of members asked to probe indirectly (k). */
  indirectChecks: number;

  /** Every gossip interval a node sends rumors (push) and/or asks for them (pull). */
  gossipIntervalMs: number;
  /** Members contacted per gossip interval. */
  gossipFanout: number;
  /** Dead members are still gossiped to for this long (helps them refute quickly). */
  gossipToTheDeadMs: number;

  /** λ: each rumor is sent retransmitMult · ceil(log10(N + 1)) times. */
  retransmitMult: number;
  /**
   * Rumors announcing a new member or a new life (generation) of one are sent
   * joinRetransmitMult × the usual λ·log N times, so no member misses a join
   * and waits for the periodic push-pull to learn of it.
   */
  joinRetransmitMult: number;
  /**
   * After its join exchange, a member runs one more push-pull with the member
   * that let it in, this long later: it learns every member that joined
   * meanwhile (0: off).
   */
  joinPushPullDelayMs: number;
  /** Lower suspicion timeout = max(suspicionFloorMult, suspicionMult · max(1, log10(N))) · probeIntervalMs (memberlist's formula, with a floor). */
  suspicionMult: number;
  /** The lower suspicion timeout is at least this many probe intervals (small clusters: the longest pause a member survives). */
  suspicionFloorMult: number;
  /** Lifeguard k: independent confirmations that bring a suspicion down from the upper to the lower timeout (memberlist ties it to suspicionMult − 2). */
  suspicionConfirmations: number;
  /** Upper suspicion timeout = suspicionMaxTimeoutMult · lower timeout. */
  suspicionMaxTimeoutMult: number;
  /** Lifeguard: highest local health multiplier (awareness score runs 0 .. max-1). */
  awarenessMaxMultiplier: number;

  /** Period of push-pull anti-entropy with one random live member over the stream. */
  pushPullIntervalMs: number;
  /** Period of contacting one dead member or seed, so partitions re-merge after they heal. */
  reconnectIntervalMs: number;
  /** Dead and left members are forgotten this long after they were declared so. */
  reapDeadAfterMs: number;

  /** Join: first retry delay; doubles each attempt up to joinRetryMaxMs. */
  joinRetryMs: number;
  joinRetryMaxMs: number;
  /** A stream exchange (push-pull, join) not answered within this is abandoned. */
  streamTimeoutMs: number;

  /** Byte budget for the messages of one outgoing packet (estimated; below the 1400-byte datagram). */
  packetBudgetBytes: number;
  /** Bound on the rumor queue; the oldest-most-sent rumors are dropped first. */
  broadcastQueueMax: number;
  /** Bound on pending probes and relayed (indirect) probes. */
  pendingProbesMax: number;
  /** Bound on members tracked (joins beyond it are ignored and counted). */
  membersMax: number;
  /** Bound on state entries per member and on a key/value's length. */
  stateEntriesMax: number;
  stateKeyBytesMax: number;
  stateValueBytesMax: number;
  /** Bound on records in one stream message (a larger cluster is sent over several exchanges). */
  streamRecordsMax: number;
  /** Bound on undelivered outputs (packets, stream requests, events). */
  outboxMax: number;

  /** User events: name (UTF-16 units) plus payload bytes at most this; larger ones are refused. */
  userEventBytesMax: number;
  /** User events: this member's own events still being gossiped at most this many; beyond, broadcastEvent refuses. */
  userEventQueueMax: number;
  /** User events: recent events buffered for anti-entropy (the oldest go first); at-least-once holds within it. */
  userEventBufferMax: number;

  /** Clock offsets: recent samples kept per member (the estimate is the one with the smallest bound). */
  clockSamplesMax: number;
  /** Clock offsets: assumed bound on the relative drift of two clocks, in ppm; widens an aging sample's bound. */
  clockDriftPpmMax: number;

  /** Phi mode: own heartbeat period. */
  heartbeatIntervalMs: number;
  /** Phi mode: conviction threshold (Cassandra's default 8). */
  phiThreshold: number;
  /** Phi mode: inter-arrival samples kept per member. */
  phiWindowSize: number;
  /** Phi mode: floor on the mean inter-arrival used in phi (avoids convicting on bursts). */
  phiMinMeanMs: number;
}

export interface GossipConfig extends Partial<GossipTuning> {
  /** Stable member id; survives restarts. */
  id: string;
  /** Where others reach this member (opaque 'host:port'). */
  address: string;
  /** Addresses to join through. May include our own address (ignored). */
  seeds?: readonly string[];
  /** Rises on every restart; the runtime persists it (e.g. last generation + 1, or boot time ms). */
  generation: number;
  /** Seeded random source in [0, 1). Never Math.random in tests. */
  random: () => number;
  /** Initial application state published by this member. */
  state?: Readonly<Record<string, string>>;
  /**
   * This member's wall clock (ms since the epoch), read when answering and
   * timing probes, to estimate peers' clock offsets (`clockOffsets`). An input
   * like `random`: the runtime passes Date.now, a simulation a skewed clock per
   * node. Without it no offsets are measured and Acks carry no timestamp.
   */
  wallClock?: () => number;
}

export const DEFAULT_TUNING: Readonly<GossipTuning> = Object.freeze({
  mode: 'push',
  detector: 'swim',
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  gossipIntervalMs: 200,
  gossipFanout: 3,
  gossipToTheDeadMs: 30_000,
  retransmitMult: 4,
  joinRetransmitMult: 2,
  joinPushPullDelayMs: 500,
  suspicionMult: 2,
  suspicionFloorMult: 4,
  suspicionConfirmations: 2,
  suspicionMaxTimeoutMult: 6,
  awarenessMaxMultiplier: 8,
  pushPullIntervalMs: 30_000,
  reconnectIntervalMs: 10_000,
  reapDeadAfterMs: 60 * 60_000,
  joinRetryMs: 1000,
  joinRetryMaxMs: 30_000,
  streamTimeoutMs: 5000,
  packetBudgetBytes: 1300,
  broadcastQueueMax: 1024,
  pendingProbesMax: 64,
  membersMax: 16_384,
  stateEntriesMax: 64,
  stateKeyBytesMax: 128,
  stateValueBytesMax: 512,
  streamRecordsMax: 20_000,
  outboxMax: 4096,
  userEventBytesMax: 512,
  userEventQueueMax: 64,
  userEventBufferMax: 256,
  clockSamplesMax: 8,
  clockDriftPpmMax: 100,
  heartbeatIntervalMs: 1000,
  phiThreshold: 8,
  phiWindowSize: 100,
  phiMinMeanMs: 500,
});

/** The tuning in effect: defaults overlaid with what the config sets. */
export function resolveTuning(config: Partial<GossipTuning>): GossipTuning {
  const t: GossipTuning = { ...DEFAULT_TUNING };
  for (const k of Object.keys(DEFAULT_TUNING) as (keyof GossipTuning)[]) {
    const v = config[k];
    if (v !== undefined) (t as unknown as Record<string, unknown>)[k] = v;
  }
  return t;
}

/** Fields that count things (messages, members, samples): non-negative integers. The rest are durations and multipliers. */
const COUNT_FIELDS: readonly (keyof GossipTuning)[] = [
  'indirectChecks',
  'gossipFanout',
  'suspicionConfirmations',
  'packetBudgetBytes',
  'broadcastQueueMax',
  'pendingProbesMax',
  'membersMax',
  'stateEntriesMax',
  'stateKeyBytesMax',
  'stateValueBytesMax',
  'streamRecordsMax',
  'outboxMax',
  'userEventBytesMax',
  'userEventQueueMax',
  'userEventBufferMax',
  'clockSamplesMax',
  'phiWindowSize',
];

/** Why `t` is not a usable tuning, or undefined: every number finite and non-negative, counts whole. */
export function tuningProblem(t: GossipTuning): string | undefined {
  for (const k of Object.keys(DEFAULT_TUNING) as (keyof GossipTuning)[]) {
    const v = t[k];
    if (typeof v !== 'number') continue;
    if (!Number.isFinite(v) || v < 0) return `${k} must be a finite non-negative number, got ${v}`;
    if (COUNT_FIELDS.includes(k) && !Number.isInteger(v)) return `${k} must be a whole number, got ${v}`;
  }
  if (t.clockSamplesMax < 1 || t.userEventBufferMax < 1 || t.joinRetransmitMult < 1 || t.retransmitMult <= 0) {
    return 'clockSamplesMax, userEventBufferMax and joinRetransmitMult must be at least 1, retransmitMult above 0';
  }
  return undefined;
}
