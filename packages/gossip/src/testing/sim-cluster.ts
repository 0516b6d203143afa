// SimCluster: a cluster of GossipNode cores over @hearsay/sim — in-process
// message objects (no codec), virtual time, seeded randomness, a wall clock
// per node (skew and drift) — with crash, restart, stall and partition
// helpers. One seed gives one run. Part of the `@hearsay/gossip/testing`
// entry point: the gossip package's simulation tests, bench/gossip and other
// packages' simulations use it.

import { Packr } from 'msgpackr';
import { createRandom, Scheduler, SimNetwork } from '@hearsay/sim';
import type { LinkParams, Random } from '@hearsay/sim';
import type { GossipTuning } from '../config.ts';
import type { MemberRecord, MemberStatus, PacketMessage, StreamMessage } from '../messages.ts';
import { GossipNode, type GossipEvent } from '../node.ts';
import type { UserEventView } from '../user-events.ts';

/** What travels on the simulated network: a datagram, or one stream message each way. */
export type SimPayload =
  | { k: 0; msgs: PacketMessage[] }
  | { k: 1; msg: StreamMessage }
  | { k: 2; msg: StreamMessage };

export interface SimClusterOptions {
  seed: number;
  n: number;
  tuning?: Partial<GossipTuning>;
  link?: Partial<LinkParams>;
  /**
   * 'view': every node starts knowing every other (loadView), so a test starts
   * from a formed cluster. 'join': nodes join through `seedCount` seed nodes.
   */
  bootstrap?: 'view' | 'join';
  /**
   * With bootstrap 'view': each node starts knowing only this many random
   * others (for clusters too large for full views in one process).
   */
  viewSize?: number;
  /** With `viewSize`: nodes every view includes (e.g. the origin of a measured update). */
  viewIncludes?: readonly number[];
  seedCount?: number;
  /** Called for every membership event on every node. */
  onEvent?: (node: number, e: GossipEvent) => void;
  /** Called for every user event delivered on every node. */
  onUserEvent?: (node: number, e: UserEventView) => void;
  /** Called for every datagram sent (for counting messages and bytes). */
  onTransmit?: (node: number, msgs: readonly PacketMessage[]) => void;
  /** Each node's wall clock against true (virtual) time; default: exact. Change one later with `setClockSkew`. */
  clockSkew?: (node: number) => ClockSkew | undefined;
}

/**
 * A node's wall clock against true time: `offsetMs` ahead at the moment the
 * skew is set, gaining `driftPpm` millionths per ms after it.
 */
export interface ClockSkew {
  offsetMs?: number;
  driftPpm?: number;
}

/** Wall-clock time of virtual time 0 (so readings look like Date.now). */
export const SIM_EPOCH_MS = 1_767_225_600_000;

export class SimCluster {
  readonly seed: number;
  readonly n: number;
  readonly random: Random;
  readonly scheduler: Scheduler;
  readonly net: SimNetwork<SimPayload>;
  readonly addrs: string[];
  readonly ids: string[];
  readonly nodes: (GossipNode | undefined)[];
  readonly generations: number[];
  private readonly tuning: Partial<GossipTuning>;
  private readonly scheduledAt: number[];
  private readonly seedAddrs: string[];
  private readonly opts: SimClusterOptions;
  private readonly skews: { offsetMs: number; driftPpm: number; sinceMs: number }[];

  constructor(opts: SimClusterOptions) {
    this.opts = opts;
    this.seed = opts.seed;
    this.n = opts.n;
    this.random = createRandom(opts.seed);
    this.scheduler = new Scheduler(0);
    this.net = new SimNetwork<SimPayload>(this.scheduler, this.random.fork(), { delayMs: 1, jitterMs: 2, ...opts.link });
    this.tuning = opts.tuning ?? {};
    this.addrs = [];
    this.ids = [];
    for (let i = 0; i < opts.n; i++) {
      this.ids.push(`n${i}`);
      this.addrs.push(`10.0.${i >> 8}.${i & 255}:7946`);
    }
    this.seedAddrs = this.addrs.slice(0, Math.max(1, opts.seedCount ?? 3));
    this.nodes = new Array<GossipNode | undefined>(opts.n).fill(undefined);
    this.generations = new Array<number>(opts.n).fill(1);
    this.scheduledAt = new Array<number>(opts.n).fill(Infinity);
    this.skews = [];
    for (let i = 0; i < opts.n; i++) {
      const k = opts.clockSkew?.(i);
      this.skews.push({ offsetMs: k?.offsetMs ?? 0, driftPpm: k?.driftPpm ?? 0, sinceMs: 0 });
    }
    for (let i = 0; i < opts.n; i++) {
      this.nodes[i] = this.makeNode(i);
      this.net.attach(this.addrs[i]!, this.receiver(i));
    }
    if ((opts.bootstrap ?? 'view') === 'view') {
      const records: MemberRecord[] = this.ids.map((id, i) => ({
        id,
        address: this.addrs[i]!,
        generation: 1,
        incarnation: 0,
        status: 'alive' as const,
        heartbeat: 0,
        version: 0,
        entries: [],
      }));
      const viewSize = opts.viewSize;
      if (viewSize === undefined || viewSize >= opts.n - 1) {
        for (const node of this.nodes) node!.loadView(records, 0);
      } else {
        for (let i = 0; i < opts.n; i++) {
          const picks = new Set<number>();
          for (const j of opts.viewIncludes ?? []) if (j !== i) picks.add(j);
          while (picks.size < viewSize) {
            const j = this.random.int(opts.n);
            if (j !== i) picks.add(j);
          }
          this.nodes[i]!.loadView([...picks].map((j) => records[j]!), 0);
        }
      }
    }
  }

  get now(): number {
    return this.scheduler.now;
  }

  /** Start every node, staggered over `spreadMs`. */
  start(spreadMs = 0): void {
    for (let i = 0; i < this.n; i++) {
      const at = spreadMs > 0 ? Math.floor(this.random.next() * spreadMs) : 0;
      this.net.timer(this.addrs[i]!, at, (now) => {
        const node = this.nodes[i];
        if (node === undefined) return;
        node.start(now);
        this.flush(i);
      });
    }
  }

  node(i: number): GossipNode {
    const node = this.nodes[i];
    if (node === undefined) throw new Error(`node ${i} is down`);
    return node;
  }

  isUp(i: number): boolean {
    return this.nodes[i] !== undefined;
  }

  liveIndices(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.n; i++) if (this.nodes[i] !== undefined) out.push(i);
    return out;
  }

  /** Node i's wall clock at virtual time `nowMs` (what it passes its core). */
  wallClockAt(i: number, nowMs = this.now): number {
    const k = this.skews[i]!;
    return SIM_EPOCH_MS + nowMs + k.offsetMs + ((nowMs - k.sinceMs) * k.driftPpm) / 1e6;
  }

  /** The true offset of node j's clock against node i's at `nowMs`: positive when j is ahead. */
  trueOffset(observer: number, member: number, nowMs = this.now): number {
    return this.wallClockAt(member, nowMs) - this.wallClockAt(observer, nowMs);
  }

  /** From now on, node i's clock is `skew.offsetMs` ahead of true time and drifts `skew.driftPpm` (a step when the offset changes). */
  setClockSkew(i: number, skew: ClockSkew): void {
    this.skews[i] = { offsetMs: skew.offsetMs ?? 0, driftPpm: skew.driftPpm ?? 0, sinceMs: this.now };
  }

  crash(i: number): void {
    this.net.crash(this.addrs[i]!);
    this.nodes[i] = undefined;
    this.scheduledAt[i] = Infinity;
  }

  /** Restart node i with the same id and a higher generation; it joins through the seeds. */
  restart(i: number): GossipNode {
    if (this.nodes[i] !== undefined) this.crash(i);
    this.generations[i] = this.generations[i]! + 1;
    const node = this.makeNode(i, true);
    this.nodes[i] = node;
    this.net.restart(this.addrs[i]!, this.receiver(i));
    node.start(this.now);
    this.flush(i);
    return node;
  }

  stall(i: number, durationMs: number): void {
    this.net.stall(this.addrs[i]!, durationMs);
  }

  /** Cut the cluster into groups of node indices. */
  partition(groups: readonly (readonly number[])[]): void {
    this.net.partition(groups.map((g) => g.map((i) => this.addrs[i]!)));
  }

  heal(): void {
    this.net.heal();
  }

  runFor(ms: number): void {
    this.scheduler.runFor(ms);
  }

  /** Run until `done()` (checked every `checkEveryMs`) or `maxMs` passes; the time it held, or undefined. */
  runUntil(done: () => boolean, maxMs: number, checkEveryMs = 50): number | undefined {
    return this.scheduler.runUntilTrue(done, this.now + maxMs, checkEveryMs);
  }

  /** Status of member `target` as seen by node `observer`. */
  statusAt(observer: number, target: number): MemberStatus | undefined {
    return this.node(observer).statusOf(this.ids[target]!);
  }

  /** True when every live node sees `target` with one of `statuses`. */
  allSee(target: number, statuses: readonly MemberStatus[]): boolean {
    const id = this.ids[target]!;
    for (let i = 0; i < this.n; i++) {
      const node = this.nodes[i];
      if (node === undefined || i === target) continue;
      const s = node.statusOf(id);
      if (s === undefined || !statuses.includes(s)) return false;
    }
    return true;
  }

  /** True when every live node sees every live node alive and every down node not alive/suspect. */
  converged(): boolean {
    for (let i = 0; i < this.n; i++) {
      const node = this.nodes[i];
      if (node === undefined) continue;
      for (let j = 0; j < this.n; j++) {
        if (j === i) continue;
        const s = node.statusOf(this.ids[j]!);
        if (this.nodes[j] !== undefined) {
          if (s !== 'alive') return false;
          const inc = node.incarnationOf(this.ids[j]!);
          if (inc === undefined || inc.generation !== this.generations[j]) return false;
        } else if (s === 'alive' || s === 'suspect') {
          return false;
        }
      }
    }
    return true;
  }

  private makeNode(i: number, joinSeeds = false): GossipNode {
    const bootstrapJoin = this.opts.bootstrap === 'join';
    const node = new GossipNode({
      id: this.ids[i]!,
      address: this.addrs[i]!,
      generation: this.generations[i]!,
      seeds: bootstrapJoin || joinSeeds ? this.seedAddrs : [],
      random: this.random.fork().next,
      wallClock: () => this.wallClockAt(i),
      ...this.tuning,
    });
    const onEvent = this.opts.onEvent;
    if (onEvent !== undefined) node.onEvent((e) => onEvent(i, e));
    else node.onEvent(ignoreEvent);
    const onUserEvent = this.opts.onUserEvent;
    node.onUserEvent(onUserEvent === undefined ? ignoreEvent : (e) => onUserEvent(i, e));
    return node;
  }

  private receiver(i: number): (from: string, p: SimPayload, nowMs: number) => void {
    const addr = this.addrs[i]!;
    return (from, p, nowMs) => {
      const node = this.nodes[i];
      if (node === undefined) return;
      if (p.k === 0) {
        node.handlePacket(from, p.msgs, nowMs);
      } else {
        const reply = node.handleStream(from, p.msg, nowMs);
        if (reply !== undefined) this.net.send(addr, from, { k: p.k === 1 ? 2 : 1, msg: reply }, true);
      }
      this.flush(i);
    };
  }

  /** Drain node i's outputs into the network and arm its next timer. */
  flush(i: number): void {
    const node = this.nodes[i];
    if (node === undefined) return;
    const addr = this.addrs[i]!;
    const onTransmit = this.opts.onTransmit;
    for (const t of node.pollTransmit()) {
      if (onTransmit !== undefined) onTransmit(i, t.msgs);
      this.net.send(addr, t.to, { k: 0, msgs: t.msgs });
    }
    const failed: string[] = [];
    for (const s of node.pollStream()) {
      // Refused like a connection to a closed port: crashed, not attached, or across a partition.
      if (!this.net.send(addr, s.to, { k: 1, msg: s.msg }, true)) failed.push(s.to);
    }
    if (failed.length > 0) {
      for (const to of failed) node.handleStreamError(to, this.now);
      this.flush(i);
      return;
    }
    const d = node.nextDeadline();
    if (d !== undefined && d < this.scheduledAt[i]!) {
      this.scheduledAt[i] = d;
      this.net.timer(addr, d, (now) => this.onTimer(i, node, d, now));
    }
  }

  private onTimer(i: number, node: GossipNode, at: number, now: number): void {
    if (this.nodes[i] !== node) return;
    if (this.scheduledAt[i] === at) this.scheduledAt[i] = Infinity;
    node.tick(now);
    this.flush(i);
  }
}

function ignoreEvent(): void {}

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/**
 * Estimated datagram payload: each message MessagePack-encoded (as codec.ts
 * does) plus a 2-byte length prefix; label, encryption and UDP/IP headers not
 * included.
 */
export function packetBytes(msgs: readonly PacketMessage[]): number {
  let n = 1;
  for (const m of msgs) n += packr.pack(m).length + 2;
  return n;
}

/** Run `fn` with a seed; on failure the error says which seed reproduces it (SIM_SEED=...). */
export function withSeed<T>(name: string, seed: number, fn: (seed: number) => T): T {
  try {
    return fn(seed);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`${name} failed with seed ${seed} (rerun with SIM_SEED=${seed}): ${msg}`, { cause: err });
  }
}
