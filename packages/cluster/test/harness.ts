import { MemoryLevel } from 'memory-level';
import type { ClockOffset } from '../src/clock-fence.ts';
import { openStore, type Store } from '@hearsay/storage';
import { createClusterNode, type ClusterConfig, type ClusterNode } from '../src/cluster-node.ts';
import { ClusterError } from '../src/errors.ts';
import { hintsSublevel } from '../src/hint-store.ts';
import { internodePackr } from '../src/internode-app.ts';
import { decodeRequest } from '../src/internode-messages.ts';
import { StaticMembership, type MemberInfo } from '../src/membership.ts';
import type { Clock } from '@hearsay/clock';
import type { MemberState } from '@hearsay/service';
import { VirtualClock } from './virtual-clock.ts';

export interface TestNode {
  readonly id: string;
  readonly db: MemoryLevel<string, Uint8Array>;
  store: Store;
  node: ClusterNode;
  readonly membership: StaticMembership;
  /** False while "crashed": its internode calls fail. */
  up: boolean;
  /** How far its wall clock runs ahead of the cluster's virtual time (ms; negative: behind). Change it to step the clock. */
  skewMs: number;
}

export interface TestClusterOptions {
  /** Each node's clock skew at start (ms, default 0). */
  readonly skewMs?: Readonly<Record<string, number>>;
  /**
   * Wire a clock offset source into every node: the true offsets of the
   * members' wall clocks (error ±1 ms, measured now). Without it the nodes
   * measure nothing, and only their stores' clocks are watched.
   */
  readonly measureOffsets?: boolean;
}

/**
 * N cluster nodes in one process over memory-level, wired by a direct
 * transport that still encodes and validates every message like HTTP does.
 */
export class TestCluster {
  readonly clock = new VirtualClock();
  readonly nodes = new Map<string, TestNode>();
  readonly config: Partial<ClusterConfig>;
  readonly options: TestClusterOptions;
  readonly errors: string[] = [];

  private constructor(config: Partial<ClusterConfig>, options: TestClusterOptions) {
    this.config = config;
    this.options = options;
  }

  static async create(n: number, config: Partial<ClusterConfig> = {}, options: TestClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster({ repairPartitionIntervalMs: 0, ...config }, options);
    const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    for (const id of ids) await c.#add(id, ids);
    return c;
  }

  /** A new member joins: it and every existing member learn of each other. */
  async join(id: string): Promise<TestNode> {
    const ids = [...this.nodes.keys(), id];
    const t = await this.#add(id, ids);
    for (const other of this.nodes.values()) {
      if (other.id !== id) other.membership.upsert({ id, state: 'alive', http: `http://${id}`, gossip: '', incarnation: 0 });
    }
    return t;
  }

  async #add(id: string, ids: readonly string[]): Promise<TestNode> {
    const db = new MemoryLevel<string, Uint8Array>({ valueEncoding: 'view' });
    await db.open();
    const membership = new StaticMembership(
      id,
      ids.map((m) => ({ id: m, state: 'alive' as const, http: `http://${m}`, gossip: '', incarnation: 0 })),
    );
    const t: TestNode = { id, db, membership, up: true, skewMs: this.options.skewMs?.[id] ?? 0, store: undefined as never, node: undefined as never };
    this.nodes.set(id, t);
    await this.#boot(t);
    return t;
  }

  /** A node's wall clock. */
  wallMs(id: string): number {
    return this.clock.now() + this.get(id).skewMs;
  }

  async #boot(t: TestNode, storeOptions: { acceptClockAhead?: boolean } = {}): Promise<void> {
    const shared = this.clock;
    // Durations run on the cluster's virtual time; what a node reads as "now" is its own wall clock.
    const clock: Clock = { now: () => shared.now() + t.skewMs, setTimer: (fn, ms) => shared.setTimer(fn, ms) };
    t.store = await openStore({ db: t.db.sublevel('data') as never, nodeId: t.id, bucketBits: 10, clock, ...storeOptions });
    const offsets = (): ReadonlyMap<string, ClockOffset> => {
      const out = new Map<string, ClockOffset>();
      for (const other of this.nodes.values()) {
        if (other.id !== t.id && other.up) out.set(other.id, { offsetMs: other.skewMs - t.skewMs, errorMs: 1, measuredAtMs: shared.now() });
      }
      return out;
    };
    t.node = createClusterNode({
      store: t.store,
      hintsDb: hintsSublevel(t.db),
      membership: t.membership,
      clock,
      monotonicMs: () => shared.now(),
      ...(this.options.measureOffsets === true ? { clockOffsets: { clockOffsets: offsets } } : {}),
      config: this.config,
      transportFactory: (m: MemberInfo) => async (type, body) => {
        const target = this.nodes.get(m.id);
        if (target === undefined || !target.up) throw new ClusterError('PEER_UNREACHABLE', `${m.id} is down`);
        const answer = await target.node.handleInternode(decodeRequest(type, internodePackr.unpack(body)));
        if (!target.up) throw new ClusterError('PEER_UNREACHABLE', `${m.id} went down`);
        return internodePackr.pack(answer);
      },
      onError: (what, e) => this.errors.push(`${t.id}: ${what}: ${(e as Error).message}`),
    });
    await t.node.start();
  }

  get(id: string): TestNode {
    const t = this.nodes.get(id);
    if (t === undefined) throw new Error(`no node ${id}`);
    return t;
  }

  /** Sets how every node's membership sees `id`. */
  setState(id: string, state: MemberState): void {
    for (const t of this.nodes.values()) if (t.id !== id) t.membership.setState(id, state);
  }

  /** Crash: the node stops answering (its memory-level data survives, like a disk). */
  async crash(id: string): Promise<void> {
    const t = this.get(id);
    t.up = false;
    await t.node.stop();
    await t.store.close();
  }

  async restart(id: string, storeOptions: { acceptClockAhead?: boolean } = {}): Promise<void> {
    const t = this.get(id);
    await this.#boot(t, storeOptions);
    t.up = true;
  }

  run<T>(p: Promise<T>): Promise<T> {
    return this.clock.runUntil(p);
  }

  /** Stops every node, letting virtual time run so requests in flight time out. */
  async stop(): Promise<void> {
    await this.run(
      (async () => {
        for (const t of this.nodes.values()) {
          if (t.up) {
            await t.node.stop();
            await t.store.close();
          }
          await t.db.close();
        }
      })(),
    );
  }
}
