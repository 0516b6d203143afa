import { createHash } from 'node:crypto';
import { ClusterError } from './errors.ts';

/**
 * The ring: who owns partitions, as a table every node carries (docs/topology.md).
 *
 * One entry per member that ever owned or asked to own partitions. Entries
 * merge by `version` (a Lamport counter the writer sets above every version
 * it knows), then by status rank, writer and instance — a total order, so the
 * merge is commutative, associative and idempotent and any two nodes that saw
 * the same entries hold the same table. Pure: no I/O, no clock.
 */

/** Member statuses in the ring. Part of the wire and of `ring.json`: append only. */
export const RING_STATUSES = ['joining', 'normal', 'leaving', 'left', 'removing', 'removed'] as const;
export type RingStatus = (typeof RING_STATUSES)[number];

/** Tie-break between two entries of one version: the later in a member's life wins. */
const STATUS_RANK: Readonly<Record<RingStatus, number>> = { joining: 0, normal: 1, leaving: 2, removing: 3, left: 4, removed: 5 };

export interface RingEntry {
  readonly id: string;
  readonly status: RingStatus;
  /** Lamport version: above every version its writer knew. */
  readonly version: number;
  /** Who wrote it: the member itself, or the member that removes it. */
  readonly by: string;
  /** Random id of the member's data dir ('' when the writer did not know it). */
  readonly instance: string;
  /** The member's gossip address when the entry was written ('' when unknown). */
  readonly gossip: string;
}

/** The table: member id → entry. Treat as immutable; `withEntry` and `mergeRings` make new ones. */
export type Ring = ReadonlyMap<string, RingEntry>;

export const EMPTY_RING: Ring = new Map();

/** Bounds on a ring received from another node. */
export const RING_ENTRIES_MAX = 4096;
const ID_CHARS_MAX = 128;
const TEXT_CHARS_MAX = 256;

/** Negative when `a` loses to `b`. */
export function compareEntries(a: RingEntry, b: RingEntry): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.status !== b.status) return STATUS_RANK[a.status] - STATUS_RANK[b.status];
  if (a.by !== b.by) return a.by < b.by ? -1 : 1;
  if (a.instance !== b.instance) return a.instance < b.instance ? -1 : 1;
  if (a.gossip !== b.gossip) return a.gossip < b.gossip ? -1 : 1;
  return 0;
}

/** The highest entry version in the ring (0 for an empty one): a writer stamps above it. */
export function ringVersion(ring: Ring): number {
  let top = 0;
  for (const e of ring.values()) if (e.version > top) top = e.version;
  return top;
}

/** `ring` with `entry` merged in (the winner of the two for its id). */
export function withEntry(ring: Ring, entry: RingEntry): Ring {
  const cur = ring.get(entry.id);
  if (cur !== undefined && compareEntries(cur, entry) >= 0) return ring;
  const next = new Map(ring);
  next.set(entry.id, entry);
  return next;
}

/** The merge of two rings, and whether it differs from `mine`. */
export function mergeRings(mine: Ring, theirs: Ring): { ring: Ring; changed: boolean } {
  let out: Map<string, RingEntry> | undefined;
  for (const e of theirs.values()) {
    const cur = (out ?? mine).get(e.id);
    if (cur !== undefined && compareEntries(cur, e) >= 0) continue;
    out ??= new Map(mine);
    out.set(e.id, e);
  }
  return out === undefined ? { ring: mine, changed: false } : { ring: out, changed: true };
}

/** A new entry by `by` for member `id`, versioned above everything in `ring`. */
export function nextEntry(ring: Ring, fields: Omit<RingEntry, 'version'>): RingEntry {
  return { ...fields, version: ringVersion(ring) + 1 };
}

/** Entries sorted by id: the canonical order of hashes and encodings. */
export function ringEntries(ring: Ring): RingEntry[] {
  return [...ring.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** 16 hex digits of SHA-256 over the canonical entries: equal rings, equal hashes. */
export function ringHash(ring: Ring): string {
  const h = createHash('sha256');
  for (const e of ringEntries(ring)) h.update(`${e.id}\u0000${e.status}\u0000${e.version}\u0000${e.by}\u0000${e.instance}\u0000${e.gossip}\u0001`);
  return h.digest('hex').slice(0, 16);
}

/** The wire and file form: an array of entries. */
export function encodeRing(ring: Ring): RingEntry[] {
  return ringEntries(ring).map((e) => ({ ...e }));
}

function bad(message: string): ClusterError {
  return new ClusterError('BAD_REQUEST', message);
}

function text(x: unknown, what: string, min: number, max: number): string {
  if (typeof x !== 'string' || x.length < min || x.length > max) throw bad(`${what} must be a string of ${min} to ${max} characters`);
  return x;
}

/** Decodes a ring from another node or from disk; throws ClusterError BAD_REQUEST on anything malformed. */
export function decodeRing(x: unknown): Ring {
  if (!Array.isArray(x)) throw bad('a ring is an array of entries');
  if (x.length > RING_ENTRIES_MAX) throw bad(`a ring holds at most ${RING_ENTRIES_MAX} entries`);
  let ring: Ring = EMPTY_RING;
  for (const raw of x) {
    if (typeof raw !== 'object' || raw === null) throw bad('a ring entry is a map');
    const r = raw as Record<string, unknown>;
    const status = r['status'];
    if (typeof status !== 'string' || !(RING_STATUSES as readonly string[]).includes(status)) throw bad(`unknown ring status ${String(status)}`);
    const version = r['version'];
    if (!Number.isSafeInteger(version) || (version as number) < 1) throw bad('a ring entry version is a positive integer');
    ring = withEntry(ring, {
      id: text(r['id'], 'a ring entry id', 1, ID_CHARS_MAX),
      status: status as RingStatus,
      version: version as number,
      by: text(r['by'], 'a ring entry writer', 1, ID_CHARS_MAX),
      instance: text(r['instance'] ?? '', 'a ring entry instance', 0, TEXT_CHARS_MAX),
      gossip: text(r['gossip'] ?? '', 'a ring entry gossip address', 0, TEXT_CHARS_MAX),
    });
  }
  return ring;
}
