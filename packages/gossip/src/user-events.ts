// User events: small payloads a member broadcasts to every member (Serf's user
// events; memberlist leaves them to the application). Delivered at least once
// and deduplicated, over two paths:
//   - rumor: a `UserEvent` spreads like any rumor (piggybacked, λ·log N sends
//     by every member that delivers it);
//   - anti-entropy: push-pull exchanges carry, per origin, how far a member
//     has delivered (`Digest.events`), and the peer sends the buffered events
//     above it. So a member the rumor missed gets the event at its next
//     push-pull (or its join follow-up), as long as some member still buffers
//     it (the last `userEventBufferMax` events).
//
// An event is named by (origin, generation, seq): seq rises by one per event
// within the origin's generation, so "delivered up to" is one number per
// origin, like a member's state version.

import type { UserEvent } from './messages.ts';

/** What a member hears: one user event, delivered once. */
export interface UserEventView {
  /** The member that broadcast it. */
  origin: string;
  /** The origin's generation and sequence number: (origin, generation, seq) names the event. */
  generation: number;
  seq: number;
  name: string;
  payload: Uint8Array;
  /** When this member delivered it (its `nowMs`). */
  atMs: number;
}

/** Delivery state of one origin's current generation. */
interface OriginState {
  generation: number;
  /** Every event with seq ≤ floor is delivered here (or given up: older than what anyone buffers). */
  floor: number;
  /** Delivered above the floor (a gap below them). */
  above: Set<number>;
}

/**
 * Which events this member has delivered (per origin: a floor and the seqs
 * above a gap) and the recent events it buffers for others. Bounded: at most
 * `bufferMax` events buffered, at most `bufferMax` seqs above a gap per
 * origin (beyond that the floor moves up past the gap: an event that old is
 * given up), at most `originsMax` origins tracked.
 */
export class UserEventLog {
  private readonly origins = new Map<string, OriginState>();
  /** Insertion order = arrival order: the oldest is evicted first. */
  private readonly buffer = new Map<string, UserEvent>();
  /** The same events by origin, for push-pull answers. */
  private readonly byOrigin = new Map<string, Map<string, UserEvent>>();

  constructor(
    private readonly bufferMax: number,
    private readonly originsMax: number,
  ) {}

  get buffered(): number {
    return this.buffer.size;
  }

  /** Highest seq delivered without a gap for `origin` in `generation` (0 when none, or another generation). */
  floorOf(origin: string, generation: number): number {
    const s = this.origins.get(origin);
    return s === undefined || s.generation !== generation ? 0 : s.floor;
  }

  /**
   * Record `e` as delivered. Returns false for a duplicate (or an event of an
   * older generation than one already seen from its origin, or when the
   * origin table is full), true when it is new and was buffered.
   */
  accept(e: UserEvent): boolean {
    let s = this.origins.get(e.origin);
    if (s === undefined || s.generation < e.generation) {
      if (s === undefined && this.origins.size >= this.originsMax) return false;
      if (s !== undefined) this.forgetBuffered(e.origin);
      s = { generation: e.generation, floor: 0, above: new Set() };
      this.origins.set(e.origin, s);
    } else if (s.generation > e.generation) {
      return false;
    }
    if (e.seq <= s.floor || s.above.has(e.seq)) return false;
    s.above.add(e.seq);
    this.compact(s);
    const key = keyOf(e);
    this.buffer.set(key, e);
    let mine = this.byOrigin.get(e.origin);
    if (mine === undefined) this.byOrigin.set(e.origin, (mine = new Map()));
    mine.set(key, e);
    while (this.buffer.size > this.bufferMax) {
      const [oldestKey, oldest] = this.buffer.entries().next().value as [string, UserEvent];
      this.buffer.delete(oldestKey);
      this.dropFromOrigin(oldest.origin, oldestKey);
    }
    return true;
  }

  /** Mark every event of `origin` up to `seq` delivered without delivering it (events from before we joined). */
  skipTo(origin: string, generation: number, seq: number): void {
    let s = this.origins.get(origin);
    if (s === undefined || s.generation < generation) {
      if (s === undefined && this.origins.size >= this.originsMax) return;
      s = { generation, floor: 0, above: new Set() };
      this.origins.set(origin, s);
    } else if (s.generation > generation) {
      return;
    }
    if (seq > s.floor) {
      s.floor = seq;
      for (const x of s.above) if (x <= seq) s.above.delete(x);
      this.compact(s);
    }
  }

  /** Buffered events of `origin` in `generation` with seq above `floor`, oldest first, at most `max`. */
  eventsAbove(origin: string, generation: number, floor: number, max: number, out: UserEvent[]): void {
    const mine = this.byOrigin.get(origin);
    if (mine === undefined) return;
    for (const e of mine.values()) {
      if (out.length >= max) return;
      if (e.origin === origin && e.generation === generation && e.seq > floor) out.push(e);
    }
  }

  /** Forget an origin entirely (reaped member). */
  forget(origin: string): void {
    this.origins.delete(origin);
    this.forgetBuffered(origin);
  }

  private forgetBuffered(origin: string): void {
    const mine = this.byOrigin.get(origin);
    if (mine === undefined) return;
    for (const k of mine.keys()) this.buffer.delete(k);
    this.byOrigin.delete(origin);
  }

  private dropFromOrigin(origin: string, key: string): void {
    const mine = this.byOrigin.get(origin);
    if (mine === undefined) return;
    mine.delete(key);
    if (mine.size === 0) this.byOrigin.delete(origin);
  }

  private compact(s: OriginState): void {
    while (s.above.delete(s.floor + 1)) s.floor++;
    if (s.above.size > this.bufferMax) {
      // Too many above a gap: the gap's events are older than anything still
      // buffered, so give them up and move the floor past them.
      const lowest = Math.min(...s.above);
      s.floor = lowest - 1;
      while (s.above.delete(s.floor + 1)) s.floor++;
    }
  }
}

export function keyOf(e: UserEvent): string {
  return `${e.origin}\u0000${e.generation}\u0000${e.seq}`;
}
