// One member as a node knows it: liveness ordered by (generation, incarnation,
// status rank) and versioned application state merged by (generation, version)
// — Cassandra's versioned endpoint state.

import type { Digest, MemberRecord, MemberStatus, StateEntry } from './messages.ts';
import type { Suspicion } from './suspicion.ts';
import type { ArrivalWindow } from './phi-accrual.ts';
import type { ClockWindow } from './clock-offset.ts';

/** At equal (generation, incarnation): suspect overrides alive, dead overrides suspect, left overrides dead. */
export const STATUS_RANK: Readonly<Record<MemberStatus, number>> = { alive: 0, suspect: 1, dead: 2, left: 3 };

export interface Member {
  id: string;
  address: string;
  status: MemberStatus;
  generation: number;
  incarnation: number;
  /** key → entry; versions rise within a generation across all keys. Write through writableState(). */
  state: ReadonlyMap<string, StateEntry>;
  /**
   * Every entry of this generation up to this version is held (newer ones may
   * be too, from an update that arrived after a gap). Digests carry it, so a
   * push-pull peer sends whatever lies above it.
   */
  stateVersion: number;
  heartbeat: number;
  statusChangedAtMs: number;
  suspicion: Suspicion | undefined;
  /** While suspect: when to ask the suspect directly again (it answers with its current Alive). */
  suspicionCheckAtMs: number;
  arrivals: ArrivalWindow | undefined;
  /** Clock offset samples of this generation (a restart may come with another clock). */
  clock: ClockWindow | undefined;
}

/** Compare (generation, incarnation): negative when a is older. */
export function compareIncarnation(aGen: number, aInc: number, bGen: number, bInc: number): number {
  return aGen !== bGen ? aGen - bGen : aInc - bInc;
}

/** Compare liveness facts including the status rank. */
export function compareLiveness(
  aGen: number,
  aInc: number,
  aStatus: MemberStatus,
  bGen: number,
  bInc: number,
  bStatus: MemberStatus,
): number {
  return compareIncarnation(aGen, aInc, bGen, bInc) || STATUS_RANK[aStatus] - STATUS_RANK[bStatus];
}

/**
 * Shared empty state of members that published nothing yet (most, at start):
 * never written to — writers replace it first (see `writableState`).
 */
export const EMPTY_STATE: ReadonlyMap<string, StateEntry> = new Map();

/** The member's state map, made private to it before the first write. */
export function writableState(m: Member): Map<string, StateEntry> {
  if (m.state === EMPTY_STATE) m.state = new Map<string, StateEntry>();
  return m.state as Map<string, StateEntry>;
}

export function newMember(id: string, address: string, generation: number, incarnation: number, nowMs: number): Member {
  return {
    id,
    address,
    status: 'alive',
    generation,
    incarnation,
    state: EMPTY_STATE,
    stateVersion: 0,
    heartbeat: 0,
    statusChangedAtMs: nowMs,
    suspicion: undefined,
    suspicionCheckAtMs: Infinity,
    arrivals: undefined,
    clock: undefined,
  };
}

export function digestOf(m: Member): Digest {
  return {
    id: m.id,
    generation: m.generation,
    incarnation: m.incarnation,
    status: m.status,
    version: m.stateVersion,
    heartbeat: m.heartbeat,
  };
}

/**
 * True when `m` knows something `d` does not: newer liveness, or (same
 * generation) a higher state version or heartbeat. Liveness and state are
 * compared separately, so both sides can be newer at once (each then sends).
 */
export function isNewerThanDigest(m: Member, d: Digest): boolean {
  if (compareLiveness(m.generation, m.incarnation, m.status, d.generation, d.incarnation, d.status) > 0) return true;
  return m.generation === d.generation && (m.stateVersion > d.version || m.heartbeat > d.heartbeat);
}

/** True when `d` carries something `m` lacks (see isNewerThanDigest). */
export function isDigestNewer(m: Member, d: Digest): boolean {
  if (compareLiveness(m.generation, m.incarnation, m.status, d.generation, d.incarnation, d.status) < 0) return true;
  return m.generation === d.generation && (d.version > m.stateVersion || d.heartbeat > m.heartbeat);
}

/** State entries of `m` above `aboveVersion` (all of them when generations differ). */
export function entriesAbove(m: Member, generation: number, aboveVersion: number): StateEntry[] {
  const floor = generation === m.generation ? aboveVersion : 0;
  const out: StateEntry[] = [];
  for (const e of m.state.values()) if (e.version > floor) out.push(e);
  return out;
}

/** The record of `m` carrying state above what the digest holder has. */
export function recordOf(m: Member, known?: Digest): MemberRecord {
  return {
    id: m.id,
    address: m.address,
    generation: m.generation,
    incarnation: m.incarnation,
    status: m.status,
    heartbeat: m.heartbeat,
    version: m.stateVersion,
    entries: known ? entriesAbove(m, known.generation, known.version) : [...m.state.values()],
  };
}

/**
 * Merge entries of `generation` into `m` by per-key version. Returns the keys
 * whose value changed (empty when nothing was newer or the generation does not
 * match). `m.stateVersion` is not moved: only the caller knows whether the
 * entries close every gap below them (see `advanceStateVersion`).
 */
export function mergeEntries(m: Member, generation: number, entries: readonly StateEntry[]): string[] {
  if (generation !== m.generation) return [];
  const changed: string[] = [];
  for (const e of entries) {
    const cur = m.state.get(e.key);
    if (cur !== undefined && cur.version >= e.version) continue;
    writableState(m).set(e.key, e);
    changed.push(e.key);
  }
  return changed;
}

/**
 * After merging entries that hold every change of `generation` in
 * (`base`, `top`]: `m` now holds everything up to `top` if it held everything
 * up to `base`. Otherwise the version stays, and the gap below `base` is
 * fetched by the next push-pull, whose digest shows the old version.
 */
export function advanceStateVersion(m: Member, generation: number, base: number, top: number): void {
  if (generation === m.generation && m.stateVersion >= base && top > m.stateVersion) m.stateVersion = top;
}

/** The highest version among `entries` (0 for none). */
export function topVersion(entries: readonly StateEntry[]): number {
  let top = 0;
  for (const e of entries) if (e.version > top) top = e.version;
  return top;
}
