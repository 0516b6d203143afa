import { createHash } from 'node:crypto';
import { computePartitionMap, type PartitionMap } from './partition-map.ts';
import { requiredReplicas } from './quorum.ts';
import type { Ring, RingEntry, RingStatus } from './ring.ts';

/**
 * Placement: the replica sets every node derives from the ring in the same
 * way (docs/topology.md). Pure.
 *
 *  - C, the current owners: `normal`, `leaving` and `removing` entries;
 *  - the active change: among transitional entries (`joining`, `leaving`,
 *    `removing`) removals first, then the lowest (version, id); the others wait;
 *  - T, the target owners: C plus an active joiner, minus an active leaver or
 *    removed member.
 *
 * Partition p's old set is O = pref(C, p) and its new set N = pref(T, p).
 * Writes and reads go to O ∪ N and need their consistency level's count of
 * each. The epoch names (C, T): a node acknowledges the epoch it
 * coordinates with, and the active change moves on only when every member
 * that can coordinate acknowledged it (the gate).
 */

export type ChangeKind = 'join' | 'decommission' | 'remove';

export interface ActiveChange {
  readonly kind: ChangeKind;
  readonly subject: string;
  /** Version of the subject's transitional entry. */
  readonly version: number;
  /** `<kind>:<subject>@<version>`: names this change in progress reports (a retried change has another). */
  readonly key: string;
}

export interface ReplicaSets {
  /** O: the current owners' replicas, best first. */
  readonly old: readonly string[];
  /** N: the target owners' replicas; the same array as `old` when the partition does not move. */
  readonly next: readonly string[];
  /** O ∪ N, O's members first: where writes and reads go. */
  readonly all: readonly string[];
  /** True when O and N differ. */
  readonly moving: boolean;
}

/** One partition a gainer fills during the active change. */
export interface PartitionTransfer {
  readonly partition: number;
  /** The gainer: a member of N − O. */
  readonly to: string;
  /** The member of O − N when there is one (the replica the gainer takes over from). */
  readonly displaced: string | undefined;
  /**
   * Members of O to copy from, in order: the displaced member first unless it
   * is being removed, then the rest of O by id; never a member being removed.
   */
  readonly sources: readonly string[];
  /** The old set, for `covered`. */
  readonly old: readonly string[];
}

export interface Placement {
  readonly partitionBits: number;
  readonly partitionCount: number;
  /** Hash of (C, T): what nodes acknowledge. */
  readonly epoch: string;
  /** C, sorted. */
  readonly owners: readonly string[];
  /** T, sorted. */
  readonly targets: readonly string[];
  readonly change: ActiveChange | undefined;
  /** Changes waiting behind the active one, in the order they will run. */
  readonly queued: readonly ActiveChange[];
  /** The map over C (RF capped at |C|). */
  readonly current: PartitionMap;
  /** The map over T; the same object as `current` when C = T. */
  readonly next: PartitionMap;
  /** Members whose acknowledgement of `epoch` the gate needs: `normal` and `leaving` entries. */
  readonly gateMembers: readonly string[];
  /** Members with a `removing` entry (active or waiting): never sources, never in a gate. */
  readonly removing: ReadonlySet<string>;
  partitionOfHash(keyHash: bigint): number;
  sets(partition: number): ReplicaSets;
  /** Every (partition, gainer) pair of the active change, by partition. */
  transfers(): readonly PartitionTransfer[];
  /** The transfers `member` receives. */
  transfersTo(member: string): readonly PartitionTransfer[];
  /** Whether `member` is in O or N of the partition. */
  replicates(member: string, partition: number): boolean;
}

export interface PlacementOptions {
  readonly partitionBits: number;
  readonly replicationFactor: number;
}

const OWNER_STATUSES: ReadonlySet<RingStatus> = new Set(['normal', 'leaving', 'removing']);
const TRANSITIONAL: Readonly<Partial<Record<RingStatus, ChangeKind>>> = { joining: 'join', leaving: 'decommission', removing: 'remove' };

/** The transitional entries in the order they run: removals first, then by (version, id). */
export function changeOrder(ring: Ring): ActiveChange[] {
  const out: ActiveChange[] = [];
  for (const e of ring.values()) {
    const kind = TRANSITIONAL[e.status];
    if (kind !== undefined) out.push({ kind, subject: e.id, version: e.version, key: `${kind}:${e.id}@${e.version}` });
  }
  return out.sort((a, b) => {
    const ra = a.kind === 'remove' ? 0 : 1;
    const rb = b.kind === 'remove' ? 0 : 1;
    if (ra !== rb) return ra - rb;
    if (a.version !== b.version) return a.version - b.version;
    return a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0;
  });
}

function epochOf(owners: readonly string[], targets: readonly string[]): string {
  return createHash('sha256').update(`${owners.join('\u0000')}\u0001${targets.join('\u0000')}`).digest('hex').slice(0, 16);
}

export function derivePlacement(ring: Ring, options: PlacementOptions): Placement {
  const entries: RingEntry[] = [...ring.values()];
  const owners = entries.filter((e) => OWNER_STATUSES.has(e.status)).map((e) => e.id).sort();
  const [change, ...queued] = changeOrder(ring);
  let targets = owners;
  if (change !== undefined) {
    targets = change.kind === 'join' ? [...owners, change.subject].sort() : owners.filter((id) => id !== change.subject);
  }
  const mapOptions = { partitionBits: options.partitionBits, replicationFactor: options.replicationFactor };
  const current = computePartitionMap(owners, mapOptions);
  const same = targets.length === owners.length && targets.every((id, i) => id === owners[i]);
  const next = same ? current : computePartitionMap(targets, mapOptions);
  const removing = new Set(entries.filter((e) => e.status === 'removing').map((e) => e.id));
  const gateMembers = entries.filter((e) => e.status === 'normal' || e.status === 'leaving').map((e) => e.id).sort();

  const setsCache: (ReplicaSets | undefined)[] = new Array(current.partitionCount);
  const sets = (p: number): ReplicaSets => {
    const cached = setsCache[p];
    if (cached !== undefined) return cached;
    const old = current.preferenceList(p);
    const nxt = next === current ? old : next.preferenceList(p);
    const moving = nxt !== old && (nxt.length !== old.length || nxt.some((id) => !old.includes(id)));
    const made: ReplicaSets = moving
      ? { old, next: nxt, all: [...old, ...nxt.filter((id) => !old.includes(id))], moving: true }
      : { old, next: old, all: old, moving: false };
    setsCache[p] = made;
    return made;
  };

  let transfersMemo: PartitionTransfer[] | undefined;
  const transfers = (): PartitionTransfer[] => {
    if (transfersMemo !== undefined) return transfersMemo;
    const out: PartitionTransfer[] = [];
    if (next !== current) {
      for (let p = 0; p < current.partitionCount; p++) {
        const s = sets(p);
        if (!s.moving) continue;
        const gained = s.next.filter((id) => !s.old.includes(id));
        const displacedAll = s.old.filter((id) => !s.next.includes(id));
        gained.forEach((to, i) => {
          const displaced = displacedAll[i];
          const first = displaced !== undefined && !removing.has(displaced) ? [displaced] : [];
          // The rest by id, not by rank: consecutive partitions then share their sources, and one bulk copy covers them.
          const sources = [...first, ...s.old.filter((id) => id !== displaced && !removing.has(id)).sort()];
          out.push({ partition: p, to, displaced, sources, old: s.old });
        });
      }
    }
    transfersMemo = out;
    return out;
  };

  return {
    partitionBits: current.partitionBits,
    partitionCount: current.partitionCount,
    epoch: epochOf(owners, targets),
    owners,
    targets,
    change,
    queued,
    current,
    next,
    gateMembers,
    removing,
    partitionOfHash: (h) => current.partitionOfHash(h),
    sets,
    transfers,
    transfersTo: (member) => transfers().filter((t) => t.to === member),
    replicates: (member, p) => sets(p).all.includes(member),
  };
}

/** The placement of a map with no change in progress: its members all own partitions. */
export function stablePlacement(map: PartitionMap): Placement {
  const ring = new Map<string, RingEntry>(map.members.map((id) => [id, { id, status: 'normal', version: 1, by: id, instance: '', gossip: '' }]));
  return derivePlacement(ring, { partitionBits: map.partitionBits, replicationFactor: Math.max(1, map.replicationFactor) });
}

/**
 * Whether a gainer that copied from `reached` holds what a majority of the
 * new set must answer for (docs/topology.md): every write acknowledged on a
 * majority W of the old set is seen by a majority R of the new set — through
 * a member of R in W, or through the gainer, which holds what its sources
 * held.
 *
 *  - The displaced member reached: enough. A W that misses every old member
 *    R includes must include the displaced one (R and W are majorities of
 *    sets that differ in one member).
 *  - No displaced member (the set only grows): any source. R and W always
 *    share an old member; the copy is for completeness.
 *  - Otherwise (the displaced member is dead or being removed): fewer than
 *    a majority of the old set left out, so every W includes a source.
 *  - Nobody to copy from (the first owner of a new cluster; or every old
 *    owner being removed): nothing acknowledged can be had.
 */
export function covered(transfer: Pick<PartitionTransfer, 'old' | 'displaced' | 'sources'>, reached: ReadonlySet<string>): boolean {
  if (transfer.sources.length === 0) return true;
  if (reached.size === 0) return false;
  if (transfer.displaced === undefined) return true;
  if (reached.has(transfer.displaced)) return true;
  const missed = transfer.old.filter((id) => !reached.has(id)).length;
  return missed < requiredReplicas('quorum', transfer.old.length);
}

/**
 * Whether the gate of `placement` is passed: every gate member acknowledged
 * its epoch. `acked` is what each member published (undefined: nothing known).
 * Returns the members still missing (empty: passed).
 */
export function gateMissing(placement: Placement, acked: (member: string) => string | undefined): string[] {
  return placement.gateMembers.filter((id) => acked(id) !== placement.epoch);
}
