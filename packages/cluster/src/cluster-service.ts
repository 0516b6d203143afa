import { backgroundClock } from '@hearsay/clock';
import { deriveKey, fileGenerationStore, Keyring, startGossip, type GossipLogger, type GossipRuntime, type GossipTuning } from '@hearsay/gossip';
import type { BodyBudget } from '@hearsay/service';
import type { Hono } from 'hono';
import type { Store } from '@hearsay/storage';
import type { ClockVerdict } from './clock-fence.ts';
import { createClusterNode, type ClusterConfig, type ClusterNode } from './cluster-node.ts';
import { Topology, type TopologyEvent, type TopologyExit } from './topology.ts';
import type { TopologyPersistence } from './topology-store.ts';
import { connectGossip, type GossipMembership } from './gossip-membership.ts';
import type { HintsDb } from './hint-store.ts';
import { ClusterKeys, toClusterKeys, type ClusterKeyInput } from './cluster-keys.ts';
import { createHttpTransport, type InternodeTls } from './http-transport.ts';
import type { Coordinator } from './coordinator.ts';

export interface ClusterServiceOptions {
  /** This node's store (open); its node id is the member id. */
  readonly store: Store;
  /** Where hints live, e.g. `hintsSublevel(new Level(join(dataDir, 'hints')))`. */
  readonly hintsDb: HintsDb;
  /** Base URL of this node's HTTP API as other nodes reach it, e.g. `http://10.0.0.1:7000`. */
  readonly httpUrl: string;
  readonly gossip: {
    /** Bind address for gossip UDP and TCP. */
    readonly host: string;
    readonly port: number;
    /** `host:port` of members to join through. */
    readonly seeds: readonly string[];
    /** Host others use to reach us when `host` is a wildcard. */
    readonly advertiseHost?: string;
    /** File where the gossip generation persists (so a restart is recognised at once). */
    readonly generationFile?: string;
    readonly config?: Partial<GossipTuning>;
    readonly logger?: GossipLogger;
  };
  /**
   * The cluster key: internode HMAC, and gossip encryption so a node with
   * another key cannot even join. `ClusterKeys` rotates without downtime:
   * its `replace` changes the keys internode requests are signed and
   * checked with, and the gossip keyring with them (every key installed,
   * the primary sealing).
   */
  readonly clusterKey?: ClusterKeyInput;
  /** TLS to members whose HTTP address is `https://`. */
  readonly tls?: InternodeTls;
  readonly config?: Partial<ClusterConfig>;
  readonly onError?: (what: string, error: unknown) => void;
  /**
   * Called once gossip runs, before any of its packets are handled (the join
   * answer can arrive while the node is still starting): subscribe here to
   * see every membership event, the first included.
   */
  readonly watchGossip?: (gossip: GossipRuntime, membership: GossipMembership) => void;
  /** For tests: how internode HTTP requests are made. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** The node's request-body budget, shared by public PUTs and internode requests (the node's `LoadLimits` of `@hearsay/http`). */
  readonly load?: BodyBudget;
  /**
   * Membership changes with streaming (docs/topology.md): where the
   * ownership table lives (`fileTopologyPersistence(<data dir>/ring.json)`),
   * `--replace`, and what to do with its log lines and its exit. Absent:
   * every member gossip lists that is not `left` owns partitions, at once.
   */
  readonly topology?: {
    readonly persistence: TopologyPersistence;
    readonly replace?: boolean;
    readonly onEvent?: (event: TopologyEvent) => void;
    readonly onExit?: (exit: TopologyExit) => void;
  };
  /** Told when this node's clock verdict changes (fenced for clock skew, back in bounds), and when its wall clock jumped. */
  readonly onClockChange?: (verdict: ClockVerdict, previous: ClockVerdict) => void;
  readonly onClockJump?: (jumpMs: number) => void;
}

export interface ClusterService {
  /** For `createApp({ service })` / the CLI's `NodeService.service`. */
  readonly service: Coordinator;
  /** For `createApp({ internal })` / `NodeService.internal`. */
  readonly internal: Hono;
  readonly mode: 'cluster';
  readonly node: ClusterNode;
  readonly gossip: GossipRuntime;
  readonly membership: GossipMembership;
  /** Leaves the cluster gracefully and stops gossip and background work. Does not close the store or the hints db. */
  stop(): Promise<void>;
}

/**
 * Everything a node process needs to be a cluster member, in one call: the
 * gossip runtime on real sockets (encrypted with the cluster key when there
 * is one), the membership view over it, and the cluster node. The result has
 * the shape of the CLI's `NodeService` (`service`, `internal`, `mode`,
 * `stop`), so `startNode({ createService })` can return it as is.
 */
export async function startClusterService(options: ClusterServiceOptions): Promise<ClusterService> {
  const { store } = options;
  const key = toClusterKeys(options.clusterKey);
  const derive = gossipKeyDeriver();
  const keyring = key === undefined ? undefined : new Keyring(key.all.map(derive));
  // A restarted node also joins through the members of the ownership table it saved (its last view).
  const saved = await options.topology?.persistence.load();
  const seeds = [...new Set([...options.gossip.seeds, ...Topology.seedsOf(saved, store.nodeId)])];
  const gossip = await startGossip({
    id: store.nodeId,
    host: options.gossip.host,
    port: options.gossip.port,
    seeds,
    label: 'hearsay',
    ...(options.gossip.advertiseHost === undefined ? {} : { advertiseHost: options.gossip.advertiseHost }),
    ...(keyring === undefined ? {} : { keyring }),
    ...(options.gossip.generationFile === undefined ? {} : { persistence: fileGenerationStore(options.gossip.generationFile) }),
    ...(options.gossip.config === undefined ? {} : { config: options.gossip.config }),
    ...(options.gossip.logger === undefined ? {} : { logger: options.gossip.logger }),
  });
  const membership = connectGossip(gossip, {
    http: options.httpUrl,
    keyCount: () => store.stats().keys,
    clock: backgroundClock,
    expectPeers: seeds.length > 0,
  });
  options.watchGossip?.(gossip, membership);
  const stopFollowingKeys = key === undefined || keyring === undefined ? () => undefined : followKeys(key, keyring, derive);
  let node: ClusterNode;
  try {
    node = createClusterNode({
      store,
      hintsDb: options.hintsDb,
      membership,
      // Gossip measures each member's clock offset from its probes; the node fences on them (clock-fence.ts).
      clockOffsets: gossip,
      ...(options.onClockChange === undefined ? {} : { onClockChange: options.onClockChange }),
      ...(options.onClockJump === undefined ? {} : { onClockJump: options.onClockJump }),
      ...(key === undefined ? {} : { clusterKey: key }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.config === undefined ? {} : { config: options.config }),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      ...(options.load === undefined ? {} : { load: options.load }),
      ...(options.topology === undefined
        ? {}
        : {
            topology: {
              persistence: options.topology.persistence,
              seeds: seeds.length > 0,
              gossipAddress: gossip.localAddress,
              ...(options.topology.replace === undefined ? {} : { replace: options.topology.replace }),
              ...(options.topology.onEvent === undefined ? {} : { onEvent: options.topology.onEvent }),
              ...(options.topology.onExit === undefined ? {} : { onExit: options.topology.onExit }),
            },
          }),
      ...(options.fetch === undefined
        ? {}
        : {
            transportFactory: (m) =>
              createHttpTransport({
                baseUrl: m.http,
                targetId: m.id,
                clock: backgroundClock,
                fetch: options.fetch!,
                ...(key === undefined ? {} : { clusterKey: key }),
              }),
          }),
    });
    await node.start();
  } catch (e) {
    stopFollowingKeys();
    membership.close();
    await gossip.stop({ leave: false });
    throw e;
  }
  membership.setStatus('serving');
  let stopping: Promise<void> | undefined;
  return {
    service: node.service,
    internal: node.internalApp,
    mode: 'cluster',
    node,
    gossip,
    membership,
    stop() {
      stopping ??= (async () => {
        stopFollowingKeys();
        try {
          membership.setStatus('stopping');
        } catch {
          // gossip already stopped
        }
        await node.stop();
        await gossip.stop();
        membership.close();
      })();
      return stopping;
    },
  };
}

/**
 * Keeps the gossip keyring on the cluster keys: after each rotation step
 * every key is installed (derived as at start), the primary's seals, and
 * keys no longer listed are removed. Returns the function that stops it.
 */
function followKeys(keys: ClusterKeys, keyring: Keyring, derive: (secret: string) => string): () => void {
  return keys.onChange((next) => {
    const wanted = next.map(derive);
    for (const k of wanted) keyring.addKey(k);
    keyring.useKey(wanted[0]!);
    for (const installed of keyring.keys()) if (!wanted.includes(installed)) keyring.removeKey(installed);
  });
}

/**
 * `deriveKey` remembered per secret (a passphrase takes ~50 ms of scrypt,
 * once, not at every rotation step), in the canonical base64 the keyring
 * lists its keys in, so keys compare equal however the secret spelled them.
 */
function gossipKeyDeriver(): (secret: string) => string {
  const derived = new Map<string, string>();
  return (secret) => {
    let key = derived.get(secret);
    if (key === undefined) derived.set(secret, (key = Buffer.from(deriveKey(secret), 'base64').toString('base64')));
    return key;
  };
}
