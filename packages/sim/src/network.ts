// Simulated network of nodes named by address. Datagrams suffer per-link
// loss, delay and jitter; partitions cut groups apart until healed; crashed
// nodes receive nothing and their timers never fire; a stalled node (an
// event-loop pause) receives its messages and fires its timers only when the
// stall ends, in their original order. All randomness comes from one seeded
// source, so one seed gives one run.

import type { Random } from './random.ts';
import type { Scheduler } from './scheduler.ts';

export interface LinkParams {
  /** Probability a datagram is dropped, 0..1. Streams (reliable sends) never are. */
  lossRate: number;
  /** Fixed one-way delay. */
  delayMs: number;
  /** Uniform extra delay in [0, jitterMs). */
  jitterMs: number;
}

export type Receiver<P> = (from: string, payload: P, nowMs: number) => void;

export interface NetworkStats {
  sent: number;
  delivered: number;
  droppedLoss: number;
  droppedPartition: number;
  droppedDown: number;
  deferredByStall: number;
}

interface NodeState<P> {
  address: string;
  receiver: Receiver<P>;
  up: boolean;
  /** Rises on every crash: timers of an earlier life never fire. */
  epoch: number;
  stalledUntilMs: number;
  group: number;
}

interface Delivery<P> {
  from: string;
  to: NodeState<P>;
  payload: P;
}

interface Timer {
  node: NodeState<unknown>;
  epoch: number;
  fn: (nowMs: number) => void;
}

export const DEFAULT_LINK: Readonly<LinkParams> = Object.freeze({ lossRate: 0, delayMs: 1, jitterMs: 1 });

export class SimNetwork<P> {
  private readonly nodes = new Map<string, NodeState<P>>();
  private readonly links = new Map<string, LinkParams>();
  private defaults: LinkParams;
  private partitioned = false;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, droppedLoss: 0, droppedPartition: 0, droppedDown: 0, deferredByStall: 0 };

  constructor(
    readonly scheduler: Scheduler,
    readonly random: Random,
    defaults: Partial<LinkParams> = {},
  ) {
    this.defaults = { ...DEFAULT_LINK, ...defaults };
  }

  get now(): number {
    return this.scheduler.now;
  }

  /** Attach (or re-attach after a crash) the node at `address`. */
  attach(address: string, receiver: Receiver<P>): void {
    const n = this.nodes.get(address);
    if (n === undefined) {
      this.nodes.set(address, { address, receiver, up: true, epoch: 0, stalledUntilMs: 0, group: -1 });
    } else {
      n.receiver = receiver;
      n.up = true;
      n.stalledUntilMs = 0;
    }
  }

  /** The node stops: nothing is delivered to it, its pending timers never fire. */
  crash(address: string): void {
    const n = this.node(address);
    n.up = false;
    n.epoch++;
  }

  /** Bring a crashed node back with a fresh receiver (a new process at the same address). */
  restart(address: string, receiver: Receiver<P>): void {
    this.attach(address, receiver);
  }

  isUp(address: string): boolean {
    return this.nodes.get(address)?.up === true;
  }

  addresses(): string[] {
    return [...this.nodes.keys()];
  }

  /** Pause `address` for `durationMs`: its deliveries and timers wait until the pause ends. */
  stall(address: string, durationMs: number): void {
    const n = this.node(address);
    n.stalledUntilMs = Math.max(n.stalledUntilMs, this.scheduler.now + durationMs);
  }

  isStalled(address: string): boolean {
    return (this.nodes.get(address)?.stalledUntilMs ?? 0) > this.scheduler.now;
  }

  /** Default parameters of every link without its own. */
  setDefaults(params: Partial<LinkParams>): void {
    this.defaults = { ...this.defaults, ...params };
  }

  /** Parameters of the directed link from → to. */
  setLink(from: string, to: string, params: Partial<LinkParams>): void {
    this.links.set(`${from}\u0000${to}`, { ...this.linkParams(from, to), ...params });
  }

  clearLinks(): void {
    this.links.clear();
  }

  /** Split the network: members of different groups cannot reach each other; unlisted nodes reach all. */
  partition(groups: readonly (readonly string[])[]): void {
    for (const n of this.nodes.values()) n.group = -1;
    groups.forEach((g, i) => {
      for (const a of g) this.node(a).group = i;
    });
    this.partitioned = true;
  }

  heal(): void {
    for (const n of this.nodes.values()) n.group = -1;
    this.partitioned = false;
  }

  canReach(from: string, to: string): boolean {
    if (!this.partitioned) return true;
    const a = this.nodes.get(from);
    const b = this.nodes.get(to);
    if (a === undefined || b === undefined) return true;
    return a.group < 0 || b.group < 0 || a.group === b.group;
  }

  /**
   * Send `payload` from → to. A `reliable` send (a stream) is never lost but
   * still cannot cross a partition or reach a crashed node. Returns false when
   * the message is known to be dropped at send time.
   */
  send(from: string, to: string, payload: P, reliable = false): boolean {
    this.stats.sent++;
    const src = this.nodes.get(from);
    if (src !== undefined && !src.up) {
      this.stats.droppedDown++;
      return false;
    }
    const dst = this.nodes.get(to);
    if (dst === undefined || !dst.up) {
      this.stats.droppedDown++;
      return false;
    }
    if (this.partitioned && src !== undefined && src.group >= 0 && dst.group >= 0 && src.group !== dst.group) {
      this.stats.droppedPartition++;
      return false;
    }
    const link = this.links.size === 0 ? this.defaults : this.linkParams(from, to);
    if (!reliable && link.lossRate > 0 && this.random.next() < link.lossRate) {
      this.stats.droppedLoss++;
      return true;
    }
    const delay = link.delayMs + (link.jitterMs > 0 ? this.random.next() * link.jitterMs : 0);
    const d: Delivery<P> = { from, to: dst, payload };
    this.scheduler.scheduleCall(this.scheduler.now + delay, this.deliver, d);
    return true;
  }

  /**
   * Run `fn` at `atMs` as a timer of the node at `address`: deferred while the
   * node is stalled, dropped if the node crashes first.
   */
  timer(address: string, atMs: number, fn: (nowMs: number) => void): void {
    const n = this.node(address) as NodeState<unknown>;
    const t: Timer = { node: n, epoch: n.epoch, fn };
    this.scheduler.scheduleCall(atMs, this.fireTimer, t);
  }

  private readonly fireTimer = (t: Timer, nowMs: number): void => {
    const n = t.node;
    if (!n.up || n.epoch !== t.epoch) return;
    if (n.stalledUntilMs > nowMs) {
      // Re-queued behind what is already due: the backlog runs in order when the node wakes.
      this.stats.deferredByStall++;
      this.scheduler.scheduleCall(n.stalledUntilMs, this.fireTimer, t);
      return;
    }
    t.fn(nowMs);
  };

  private readonly deliver = (d: Delivery<P>, nowMs: number): void => {
    const n = d.to;
    if (!n.up) {
      this.stats.droppedDown++;
      return;
    }
    if (n.stalledUntilMs > nowMs) {
      this.stats.deferredByStall++;
      this.scheduler.scheduleCall(n.stalledUntilMs, this.deliver, d);
      return;
    }
    this.stats.delivered++;
    n.receiver(d.from, d.payload, nowMs);
  };

  private linkParams(from: string, to: string): LinkParams {
    return this.links.get(`${from}\u0000${to}`) ?? this.defaults;
  }

  private node(address: string): NodeState<P> {
    const n = this.nodes.get(address);
    if (n === undefined) throw new RangeError(`unknown sim node ${address}`);
    return n;
  }
}
