import { ringMembers, type MembershipView } from './membership.ts';
import { derivePlacement, type Placement } from './placement.ts';
import { EMPTY_RING, withEntry, type Ring, type RingStatus } from './ring.ts';

/**
 * Who owns what, as the coordinator, anti-entropy and the foreign handoff
 * see it. Two implementations: the topology (topology.ts: the gossip-synced
 * ring with pending owners, what a node process runs) and the static
 * ownership below (every member not `left` owns partitions: tests with a
 * fixed `StaticMembership`, and embedders without membership changes).
 */
export interface Ownership {
  /** The placement requests use now. */
  placement(): Placement;
  /** Called after `placement()` changed; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
  /**
   * A write starts under `placement`; call the returned function once it
   * settled. A node acknowledges a new placement only when no write of an
   * earlier one is still in flight (docs/topology.md, the gate).
   */
  writeStarted(placement: Placement): () => void;
  /** Undefined while this node coordinates requests; else the reason it does not (answered 503). */
  notServing(): string | undefined;
  /** Whether this node may drop its records of a partition it does not replicate (every coordinator moved on). */
  mayDrop(partition: number): boolean;
  /** The ring status of a member, when the ownership keeps a ring. */
  statusOf(member: string): RingStatus | undefined;
  /** More fields for `/v1/cluster` (the active change, transfers), when there are any. */
  report(): Record<string, unknown> | undefined;
  /** Prometheus text for `/metrics`. */
  metrics(): string;
}

export interface StaticOwnershipOptions {
  readonly partitionBits: number;
  readonly replicationFactor: number;
}

/**
 * Every member the view lists that is not `left` owns partitions, this node
 * included; a membership change moves ownership at once, with nothing
 * streamed (the behaviour before the topology: tests with a fixed member set).
 */
export function staticOwnership(membership: MembershipView, options: StaticOwnershipOptions): Ownership & { close(): void } {
  const listeners = new Set<() => void>();
  let key = '';
  let current: Placement | undefined;
  const compute = (): Placement => {
    const ids = ringMembers(membership.members());
    if (!ids.includes(membership.selfId)) ids.push(membership.selfId);
    const k = [...ids].sort().join('\u0000');
    if (k === key && current !== undefined) return current;
    key = k;
    let ring: Ring = EMPTY_RING;
    for (const id of ids) ring = withEntry(ring, { id, status: 'normal', version: 1, by: id, instance: '', gossip: '' });
    current = derivePlacement(ring, options);
    return current;
  };
  compute();
  const unsubscribe = membership.onChange(() => {
    const before = current;
    if (compute() !== before) for (const l of [...listeners]) l();
  });
  return {
    placement: () => current!,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    writeStarted: () => () => undefined,
    notServing: () => (membership.ready?.() === false ? 'joining: no other member seen yet' : undefined),
    mayDrop: () => false,
    statusOf: () => undefined,
    report: () => undefined,
    metrics: () => '',
    close() {
      unsubscribe();
      listeners.clear();
    },
  };
}
