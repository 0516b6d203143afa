import type { MemberState } from '@hearsay/service';

/**
 * What the cluster needs to know about the other members. The gossip runtime
 * feeds it through `connectGossip` (gossip-adapter.ts); tests and the
 * simulation use `StaticMembership`.
 */
export interface MemberInfo {
  readonly id: string;
  readonly state: MemberState;
  /** Base URL of the member's HTTP API (`http://127.0.0.1:7000`); '' when unknown. */
  readonly http: string;
  /** `host:port` of its gossip endpoint; '' when it has none. */
  readonly gossip: string;
  readonly incarnation: number;
  /** Live keys the member last reported, when it did. */
  readonly keys?: number;
  /** What the node says of itself (`starting`, `serving`, `stopping`), when it did. */
  readonly status?: string;
  /** Its gossip state `ring`: `<ring hash> <acknowledged epoch>` (topology.ts), when it published one. */
  readonly ring?: string;
  /** Its gossip state `xfer`: progress of what it fills (topology.ts), when it published one. */
  readonly xfer?: string;
}

export interface MembershipView {
  /** This node's id. */
  readonly selfId: string;
  /** Every member known, this node included, in any order. */
  members(): readonly MemberInfo[];
  /** Called after any change of the member list or of a member's state; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
  /**
   * False while this node has not found the cluster yet (it has seeds but sees
   * no other member alive). The coordinator refuses requests meanwhile: with
   * a view of itself alone it would cap RF at 1. Absent means always ready.
   */
  ready?(): boolean;
  /** Publishes one key of this node's state to the others (gossip application state). Absent: nothing is published. */
  publish?(key: string, value: string): void;
}

/**
 * Members that own partitions: everybody not `left`. A `dead` member keeps its
 * partitions (its writes become hints) until it leaves or the gossip layer
 * reaps it, so a crash does not move data around.
 */
export function ringMembers(members: readonly MemberInfo[]): string[] {
  return members.filter((m) => m.state !== 'left').map((m) => m.id);
}

/** Whether writes and reads are sent to a member: `alive` and `suspect` are tried, `dead` and `left` are not. */
export function isReachable(member: MemberInfo | undefined): boolean {
  return member !== undefined && (member.state === 'alive' || member.state === 'suspect');
}

/** A membership view set by hand: tests, the simulation's oracle, a fixed cluster. */
export class StaticMembership implements MembershipView {
  readonly selfId: string;
  readonly #members = new Map<string, MemberInfo>();
  readonly #listeners = new Set<() => void>();

  constructor(selfId: string, members: readonly MemberInfo[] = []) {
    this.selfId = selfId;
    for (const m of members) this.#members.set(m.id, m);
  }

  members(): readonly MemberInfo[] {
    return [...this.#members.values()];
  }

  get(id: string): MemberInfo | undefined {
    return this.#members.get(id);
  }

  /** Adds or replaces a member. */
  upsert(member: MemberInfo): void {
    this.#members.set(member.id, member);
    this.#emit();
  }

  setState(id: string, state: MemberState): void {
    const m = this.#members.get(id);
    if (m === undefined || m.state === state) return;
    this.#members.set(id, { ...m, state });
    this.#emit();
  }

  remove(id: string): void {
    if (this.#members.delete(id)) this.#emit();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(): void {
    for (const l of [...this.#listeners]) l();
  }
}
