/**
 * A Hearsay cluster in one process on `@hearsay/sim`: every node has its own
 * memory-level database (it survives crashes, like a disk), a real store, the
 * real gossip runtime over the simulated transport, and the real cluster node
 * whose internode calls travel the simulated network. Virtual time only; one
 * seed gives one run.
 */
import { MemoryLevel } from 'memory-level';
import { createRandom, Scheduler, SimNetwork, type Random } from '@hearsay/sim';
import { startGossip, type GossipRuntime, type GossipTuning } from '@hearsay/gossip';
import { createSimTransport, simClock, type SimWire } from '@hearsay/gossip/testing';
import { openStore, type Store, type StoredRecord } from '@hearsay/storage';
import { cachedPeerFactory, createClusterNode, type ClusterConfig, type ClusterNode } from '../../src/cluster-node.ts';
import { ClusterError } from '../../src/errors.ts';
import { connectGossip, type GossipMembership } from '../../src/gossip-membership.ts';
import { hintsSublevel } from '../../src/hint-store.ts';
import { internodePackr } from '../../src/internode-app.ts';
import { decodeRequest, type InternodeType } from '../../src/internode-messages.ts';
import { InternodePeerClient, type InternodeTransport } from '../../src/peer-client.ts';
import type { Clock } from '@hearsay/clock';
import type { TopologyExit } from '../../src/topology.ts';
import { memoryTopologyPersistence, type TopologyPersistence } from '../../src/topology-store.ts';

type InternodeWire =
  | { readonly kind: 'req'; readonly id: number; readonly type: InternodeType; readonly body: Uint8Array }
  | { readonly kind: 'res'; readonly id: number; readonly body?: Uint8Array; readonly error?: string };

export interface SimNode {
  readonly id: string;
  readonly gossipAddress: string;
  /** The internode address; published as the member's `http`. */
  readonly nodeAddress: string;
  db: MemoryLevel<string, Uint8Array>;
  /** The topology state, kept across crashes like the db (with `topology`). */
  persistence: TopologyPersistence;
  /** Boot as a replacement of the member with this id (`--replace`). */
  replace: boolean;
  /** Stopped for good (decommissioned, removed, replaced): never restarted. */
  gone: boolean;
  up: boolean;
  store: Store | undefined;
  cluster: ClusterNode | undefined;
  gossip: GossipRuntime | undefined;
  membership: GossipMembership | undefined;
  closing: Promise<unknown>;
  pending: Map<number, { resolve: (b: Uint8Array) => void; reject: (e: unknown) => void }>;
}

export interface SimClusterOptions {
  readonly seed: number;
  readonly n: number;
  readonly cluster?: Partial<ClusterConfig>;
  readonly gossip?: Partial<GossipTuning>;
  readonly bucketBits?: number;
  /** Every record any store applied, for the checks. */
  readonly onChange?: (node: string, record: StoredRecord) => void;
  /** Run the topology (docs/topology.md: ring, joins, decommissions, removals) instead of static ownership. */
  readonly topology?: boolean;
  /** A node's topology stopped it (decommissioned, removed, replaced); the sim has already stopped it. */
  readonly onExit?: (node: string, exit: TopologyExit) => void;
}

const START_MS = 1_700_000_000_000;
const macrotask = (): Promise<void> => new Promise((r) => setImmediate(r));

export class SimCluster {
  readonly random: Random;
  readonly scheduler = new Scheduler(START_MS);
  readonly gossipNet: SimNetwork<SimWire>;
  readonly nodeNet: SimNetwork<InternodeWire>;
  readonly nodes: SimNode[] = [];
  readonly errors: string[] = [];
  readonly #options: SimClusterOptions;
  #nextRequestId = 1;

  constructor(options: SimClusterOptions) {
    this.#options = options;
    this.random = createRandom(options.seed);
    this.gossipNet = new SimNetwork<SimWire>(this.scheduler, this.random.fork(), { delayMs: 1, jitterMs: 2 });
    this.nodeNet = new SimNetwork<InternodeWire>(this.scheduler, this.random.fork(), { delayMs: 1, jitterMs: 2 });
    for (let i = 1; i <= options.n; i++) this.#newNode(i);
  }

  #newNode(i: number): SimNode {
    const n: SimNode = {
      id: `n${i}`,
      gossipAddress: `10.0.0.${i}:7946`,
      nodeAddress: `10.0.0.${i}:7000`,
      db: new MemoryLevel<string, Uint8Array>(),
      persistence: memoryTopologyPersistence(),
      replace: false,
      gone: false,
      up: false,
      store: undefined,
      cluster: undefined,
      gossip: undefined,
      membership: undefined,
      closing: Promise.resolve(),
      pending: new Map(),
    };
    this.nodes.push(n);
    return n;
  }

  /** A new node (next id and addresses), started: it joins through every other node. */
  async addNode(): Promise<SimNode> {
    const n = this.#newNode(this.nodes.length + 1);
    await this.#boot(n);
    return n;
  }

  /** Crashes the node for good and gives it an empty disk: its next boot takes over its id (`--replace`). */
  async wipeForReplacement(id: string): Promise<void> {
    const n = this.node(id);
    this.crash(id);
    await n.closing;
    await n.db.close();
    n.db = new MemoryLevel<string, Uint8Array>();
    n.persistence = memoryTopologyPersistence();
    n.replace = true;
  }

  get now(): number {
    return this.scheduler.now;
  }

  node(id: string): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Starts every node. */
  async start(): Promise<void> {
    for (const n of this.nodes) await this.#boot(n);
  }

  /** Virtual time moves only when everything runnable has run (storage resolves through microtasks). */
  async runFor(ms: number): Promise<void> {
    const until = this.scheduler.now + ms;
    for (;;) {
      await macrotask();
      const t = this.scheduler.peekTime();
      if (t === undefined || t > until) break;
      while (this.scheduler.peekTime() === t) this.scheduler.step();
    }
    this.scheduler.runUntil(until);
    await macrotask();
  }

  /** Runs until `p` settles or `maxMs` of virtual time passed; undefined when it did not settle. */
  async runUntilSettled<T>(p: Promise<T>, maxMs: number): Promise<{ value: T } | undefined> {
    let out: { value: T } | undefined;
    let failed: { error: unknown } | undefined;
    p.then(
      (value) => (out = { value }),
      (error: unknown) => (failed = { error }),
    );
    const until = this.scheduler.now + maxMs;
    for (;;) {
      await macrotask();
      if (out !== undefined) return out;
      if (failed !== undefined) throw failed.error;
      const t = this.scheduler.peekTime();
      if (t === undefined || t > until) return undefined;
      while (this.scheduler.peekTime() === t) this.scheduler.step();
    }
  }

  /** Runs until `done()` holds, checking every `everyMs`; false when `maxMs` passed first. */
  async runUntilTrue(done: () => boolean, maxMs: number, everyMs = 100): Promise<boolean> {
    const until = this.scheduler.now + maxMs;
    while (this.scheduler.now < until) {
      if (done()) return true;
      await this.runFor(everyMs);
    }
    return done();
  }

  /** Whether every up node sees every up node alive and every down node not alive. */
  viewsAgree(): boolean {
    for (const n of this.nodes) {
      if (!n.up || n.membership === undefined) continue;
      const seen = new Map(n.membership.members().map((m) => [m.id, m]));
      for (const other of this.nodes) {
        const m = seen.get(other.id);
        if (other.up && (m?.state !== 'alive' || m.http === '')) return false;
      }
    }
    return true;
  }

  crash(id: string): void {
    const n = this.node(id);
    if (!n.up) return;
    n.up = false;
    this.nodeNet.crash(n.nodeAddress);
    // Closing the sim transport also crashes the gossip address; stop() without
    // leave is what a crash looks like to the others.
    const gossip = n.gossip;
    const store = n.store;
    n.membership?.close();
    for (const p of n.pending.values()) p.reject(new ClusterError('PEER_UNREACHABLE', 'crashed'));
    n.pending.clear();
    n.cluster = undefined;
    n.gossip = undefined;
    n.membership = undefined;
    n.store = undefined;
    // The abandoned node's timers never fire again (the network drops them), so
    // nothing that waits on them is awaited: only the store must be closed
    // before the next life opens it.
    void gossip?.stop({ leave: false }).catch(() => undefined);
    n.closing = Promise.allSettled([store?.close()]);
  }

  async restart(id: string): Promise<void> {
    const n = this.node(id);
    if (n.up || n.gone) return;
    await n.closing;
    await this.#boot(n);
  }

  partition(groups: readonly (readonly string[])[]): void {
    this.gossipNet.partition(groups.map((g) => g.map((id) => this.node(id).gossipAddress)));
    this.nodeNet.partition(groups.map((g) => g.map((id) => this.node(id).nodeAddress)));
  }

  heal(): void {
    this.gossipNet.heal();
    this.nodeNet.heal();
  }

  stall(id: string, ms: number): void {
    const n = this.node(id);
    if (!n.up) return;
    this.gossipNet.stall(n.gossipAddress, ms);
    this.nodeNet.stall(n.nodeAddress, ms);
  }

  async close(): Promise<void> {
    for (const n of this.nodes) {
      if (n.up) this.crash(n.id);
      await n.closing;
      await n.db.close();
    }
  }

  /** The node's clock: its timers are events of its address on the node network (deferred by stalls, dropped by crashes). */
  #clock(n: SimNode): Clock {
    const net = this.nodeNet;
    return {
      now: () => net.now,
      setTimer(fn, delayMs) {
        let cancelled = false;
        net.timer(n.nodeAddress, net.now + Math.max(0, delayMs), () => {
          if (!cancelled) fn();
        });
        return () => {
          cancelled = true;
        };
      },
    };
  }

  #transport(from: SimNode, toAddress: string): InternodeTransport {
    return (type, body, signal) =>
      new Promise<Uint8Array>((resolve, reject) => {
        const id = this.#nextRequestId++;
        if (!this.nodeNet.send(from.nodeAddress, toAddress, { kind: 'req', id, type, body }, true)) {
          reject(new ClusterError('PEER_UNREACHABLE', `${toAddress} is unreachable`));
          return;
        }
        from.pending.set(id, { resolve, reject });
        signal.addEventListener('abort', () => {
          from.pending.delete(id);
          reject(signal.reason);
        });
      });
  }

  #receiver(n: SimNode) {
    return (from: string, wire: InternodeWire): void => {
      if (wire.kind === 'res') {
        const p = n.pending.get(wire.id);
        if (p === undefined) return;
        n.pending.delete(wire.id);
        if (wire.body !== undefined) p.resolve(wire.body);
        else p.reject(new ClusterError('PEER_UNREACHABLE', wire.error ?? 'failed'));
        return;
      }
      const cluster = n.cluster;
      if (cluster === undefined) return;
      void (async () => {
        let res: InternodeWire;
        try {
          const answer = await cluster.handleInternode(decodeRequest(wire.type, internodePackr.unpack(wire.body)));
          res = { kind: 'res', id: wire.id, body: internodePackr.pack(answer) };
        } catch (e) {
          res = { kind: 'res', id: wire.id, error: (e as Error).message };
        }
        if (n.cluster === cluster) this.nodeNet.send(n.nodeAddress, from, res, true);
      })();
    };
  }

  async #boot(n: SimNode): Promise<void> {
    const clock = this.#clock(n);
    const store = await openStore({
      db: n.db.sublevel('data') as never,
      nodeId: n.id,
      bucketBits: this.#options.bucketBits ?? 6,
      clock,
    });
    const onChange = this.#options.onChange;
    if (onChange !== undefined) store.subscribe((c) => onChange(n.id, c.record));
    this.nodeNet.restart(n.nodeAddress, this.#receiver(n));
    const transport = createSimTransport(this.gossipNet, { address: n.gossipAddress });
    const gossip = await startGossip({
      id: n.id,
      transport,
      clock: simClock(this.gossipNet, n.gossipAddress),
      random: this.random.fork().next,
      seeds: this.nodes.filter((x) => x !== n).map((x) => x.gossipAddress),
      ...(this.#options.gossip === undefined ? {} : { config: this.#options.gossip }),
    });
    const membership = connectGossip(gossip, { http: n.nodeAddress, keyCount: () => store.stats().keys, expectPeers: true });
    const saltRandom = this.random.fork();
    const cluster = createClusterNode({
      store,
      hintsDb: hintsSublevel(n.db),
      membership,
      clock,
      config: this.#options.cluster ?? {},
      ...(this.#options.topology === true
        ? {
            topology: {
              persistence: n.persistence,
              seeds: true,
              replace: n.replace,
              gossipAddress: n.gossipAddress,
              onExit: (exit: TopologyExit) => {
                // The process would exit: it leaves gossip and is not started again.
                n.gone = true;
                this.scheduler.after(0, () => {
                  if (!n.up) return;
                  void n.gossip?.stop({ leave: true }).catch(() => undefined);
                  this.crash(n.id);
                });
                this.#options.onExit?.(n.id, exit);
              },
            },
          }
        : {}),
      peerFactory: cachedPeerFactory(
        (m) =>
          new InternodePeerClient(this.#transport(n, m.http), {
            clock,
            timeoutMs: this.#options.cluster?.peerTimeoutMs ?? 1000,
          }),
      ),
      repairSalt: () => Uint8Array.from({ length: 8 }, () => saltRandom.int(256)),
      onError: (what, e) => {
        if (this.errors.length < 1000) this.errors.push(`${this.now - START_MS} ${n.id}: ${what}: ${(e as Error)?.message ?? String(e)}`);
      },
    });
    n.store = store;
    n.gossip = gossip;
    n.membership = membership;
    n.cluster = cluster;
    n.pending = new Map();
    n.up = true;
    await cluster.start();
    membership.setStatus('serving');
  }
}
