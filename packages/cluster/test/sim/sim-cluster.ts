/**
 * A Hearsay cluster in one process on `@hearsay/sim`: every node has its own
 * memory-level database (it survives crashes, like a disk), a real store, the
 * real gossip runtime over the simulated transport, and the real cluster node
 * whose internode calls travel the simulated network. Virtual time only; one
 * seed gives one run.
 *
 * Every node has its own wall clock: virtual time plus an offset that drifts
 * (`SimClock`), which the test may step or set drifting. The store stamps
 * and the cluster reads "now" from it; timers run on virtual time, which is
 * also each node's monotonic clock. The members' clock offsets reach each
 * node's clock fence through an oracle (the true offsets, error ±1 ms) — the
 * gossip runtime here does not measure them.
 */
import { MemoryLevel } from 'memory-level';
import { createRandom, Scheduler, SimNetwork, type Random } from '@hearsay/sim';
import { startGossip, type GossipRuntime, type GossipTuning } from '@hearsay/gossip';
import { createSimTransport, simClock, type SimWire } from '@hearsay/gossip/testing';
import { isStorageError, openStore, type Store, type StoredRecord, type Version } from '@hearsay/storage';
import type { ClockOffset } from '../../src/clock-fence.ts';
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

/**
 * A node's wall clock: `now + offsetMs + driftPpm·(now − sinceMs)/10^6` on
 * virtual time `now`. `set` changes offset and drift from the present on
 * (the clock steps by the difference; it is continuous otherwise).
 */
export class SimClock {
  #offsetMs: number;
  #driftPpm: number;
  #sinceMs: number;

  constructor(offsetMs: number, driftPpm: number, sinceMs: number) {
    this.#offsetMs = offsetMs;
    this.#driftPpm = driftPpm;
    this.#sinceMs = sinceMs;
  }

  /** How far this clock is ahead of virtual time at `nowMs`. */
  offsetAt(nowMs: number): number {
    return this.#offsetMs + (this.#driftPpm * (nowMs - this.#sinceMs)) / 1e6;
  }

  wallAt(nowMs: number): number {
    return nowMs + this.offsetAt(nowMs);
  }

  get driftPpm(): number {
    return this.#driftPpm;
  }

  /** From `nowMs` on: this offset (a step when it differs from the current one) and this drift. */
  set(nowMs: number, offsetMs: number, driftPpm: number): void {
    this.#offsetMs = offsetMs;
    this.#driftPpm = driftPpm;
    this.#sinceMs = nowMs;
  }
}

export interface SimNode {
  readonly id: string;
  readonly clock: SimClock;
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
  /** Each version a node's store stamps (a write it coordinates), when it stamps it. */
  readonly onStamp?: (node: string, version: Version) => void;
  /** Each node's clock at start: offset (ms) and drift (ppm). Default 0, 0. */
  readonly clocks?: Readonly<Record<string, { readonly offsetMs: number; readonly driftPpm: number }>>;
  /** The stores' maximum clock offset. Default 500 ms. */
  readonly maxClockOffsetMs?: number;
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
  /** Nodes whose store refused to open on a high-water mark from a clock that was ahead, and were started accepting it (as an operator would). */
  readonly clockGuardsFired: string[] = [];
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
    const clock = this.#options.clocks?.[`n${i}`];
    const n: SimNode = {
      id: `n${i}`,
      clock: new SimClock(clock?.offsetMs ?? 0, clock?.driftPpm ?? 0, START_MS),
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

  /** A node's wall clock now. */
  wallMs(id: string): number {
    return this.node(id).clock.wallAt(this.scheduler.now);
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
      // What the node reads as now: its own wall clock. Delays run on virtual time.
      now: () => n.clock.wallAt(net.now),
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

  /** The true offsets of the other up members' wall clocks against this node's (what gossip would measure), error ±1 ms. */
  #offsetsOf(n: SimNode): ReadonlyMap<string, ClockOffset> {
    const now = this.scheduler.now;
    const mine = n.clock.offsetAt(now);
    const out = new Map<string, ClockOffset>();
    for (const other of this.nodes) {
      if (other !== n && other.up) out.set(other.id, { offsetMs: other.clock.offsetAt(now) - mine, errorMs: 1, measuredAtMs: now });
    }
    return out;
  }

  async #openStore(n: SimNode): Promise<Store> {
    const options = {
      db: n.db.sublevel('data') as never,
      nodeId: n.id,
      bucketBits: this.#options.bucketBits ?? 6,
      clock: { now: () => n.clock.wallAt(this.scheduler.now) },
      ...(this.#options.maxClockOffsetMs === undefined ? {} : { maxClockOffsetMs: this.#options.maxClockOffsetMs }),
    };
    try {
      return await openStore(options);
    } catch (e) {
      if (!isStorageError(e, 'CLOCK_AHEAD')) throw e;
      // Its high-water mark is ahead of its clock (it last ran with a clock ahead, or its clock is behind now): start it waiting that out.
      this.clockGuardsFired.push(n.id);
      return openStore({ ...options, acceptClockAhead: true });
    }
  }

  async #boot(n: SimNode): Promise<void> {
    const clock = this.#clock(n);
    const store = await this.#openStore(n);
    const onChange = this.#options.onChange;
    if (onChange !== undefined) store.subscribe((c) => onChange(n.id, c.record));
    const onStamp = this.#options.onStamp;
    if (onStamp !== undefined) {
      const stamp = store.now.bind(store);
      store.now = () => {
        const v = stamp();
        onStamp(n.id, v);
        return v;
      };
    }
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
      monotonicMs: () => this.scheduler.now,
      clockOffsets: { clockOffsets: () => this.#offsetsOf(n) },
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
