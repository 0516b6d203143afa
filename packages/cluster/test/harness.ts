import { MemoryLevel } from 'memory-level';
import { openStore, type Store } from '@hearsay/storage';
import { createClusterNode, type ClusterConfig, type ClusterNode } from '../src/cluster-node.ts';
import { ClusterError } from '../src/errors.ts';
import { hintsSublevel } from '../src/hint-store.ts';
import { internodePackr } from '../src/internode-app.ts';
import { decodeRequest } from '../src/internode-messages.ts';
import { StaticMembership, type MemberInfo } from '../src/membership.ts';
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
}

/**
 * N cluster nodes in one process over memory-level, wired by a direct
 * transport that still encodes and validates every message like HTTP does.
 */
export class TestCluster {
  readonly clock = new VirtualClock();
  readonly nodes = new Map<string, TestNode>();
  readonly config: Partial<ClusterConfig>;
  readonly errors: string[] = [];

  private constructor(config: Partial<ClusterConfig>) {
    this.config = config;
  }

  static async create(n: number, config: Partial<ClusterConfig> = {}): Promise<TestCluster> {
    const c = new TestCluster({ repairPartitionIntervalMs: 0, ...config });
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
    const t: TestNode = { id, db, membership, up: true, store: undefined as never, node: undefined as never };
    this.nodes.set(id, t);
    await this.#boot(t);
    return t;
  }

  async #boot(t: TestNode): Promise<void> {
    t.store = await openStore({ db: t.db.sublevel('data') as never, nodeId: t.id, bucketBits: 10, clock: this.clock });
    t.node = createClusterNode({
      store: t.store,
      hintsDb: hintsSublevel(t.db),
      membership: t.membership,
      clock: this.clock,
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

  async restart(id: string): Promise<void> {
    const t = this.get(id);
    await this.#boot(t);
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
