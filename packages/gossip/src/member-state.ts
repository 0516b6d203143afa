// One member as a node knows it: liveness ordered by (generation, incarnation,
// status rank) and versioned application state merged by (generation, version)
// — Cassandra's versioned endpoint state.

import type { Digest, MemberRecord, MemberStatus, StateEntry } from './messages.ts';
import type { Suspicion } from './suspicion.ts';
import type { ArrivalWindow } from './phi-accrual.ts';

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
  stateVersion: number;
  heartbeat: number;
  statusChangedAtMs: number;
  suspicion: Suspicion | undefined;
  /** While suspect: when to ask the suspect directly again (it answers with its current Alive). */
  suspicionCheckAtMs: number;
  arrivals: ArrivalWindow | undefined;
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
    entries: known ? entriesAbove(m, known.generation, known.version) : [...m.state.values()],
  };
}

/**
 * Merge entries of `generation` into `m`. Returns the keys whose value changed
 * (empty when nothing was newer or the generation does not match).
 */
export function mergeEntries(m: Member, generation: number, entries: readonly StateEntry[]): string[] {
  if (generation !== m.generation) return [];
  const changed: string[] = [];
  for (const e of entries) {
    const cur = m.state.get(e.key);
    if (cur !== undefined && cur.version >= e.version) continue;
    writableState(m).set(e.key, e);
    if (e.version > m.stateVersion) m.stateVersion = e.version;
    changed.push(e.key);
  }
  return changed;
}
