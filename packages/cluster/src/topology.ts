import { randomBytes } from 'node:crypto';
import { ServiceError } from '@hearsay/service';
import { hashKey, type Store } from '@hearsay/storage';
import type { RepairRange } from './anti-entropy.ts';
import { GOSSIP_STATE_RING, GOSSIP_STATE_XFER } from './gossip-membership.ts';
import type { InternodeTopology } from './internode-handler.ts';
import { isReachable, type MemberInfo, type MembershipView } from './membership.ts';
import type { Ownership } from './ownership.ts';
import type { PeerClient, PeerFactory } from './peer.ts';
import { covered, derivePlacement, type ActiveChange, type Placement, type PartitionTransfer } from './placement.ts';
import { metricFamily } from './prom-text.ts';
import { EMPTY_RING, mergeRings, nextEntry, ringEntries, ringHash, withEntry, type Ring, type RingEntry, type RingStatus } from './ring.ts';
import type { Clock } from '@hearsay/clock';
import type { TopologyPersistence, TopologyState } from './topology-store.ts';
import { fillPartition, StreamLimiter } from './transfer.ts';

/**
 * The topology of a node process (docs/topology.md): it keeps the ring — the
 * ownership table — in sync with the other members (gossip says who has
 * which ring hash, the internode `ring` exchange merges tables), derives the
 * placement the coordinator uses, acknowledges epochs once the writes of
 * earlier ones settled, fills the partitions this node gains once the gate
 * passed, commits the changes it is responsible for, and runs the operator's
 * decommission and removal.
 *
 * Everything timed goes through `clock`, so the simulation runs it on
 * virtual time.
 */

export interface TopologyConfig {
  readonly partitionBits: number;
  readonly replicationFactor: number;
  /** How often the ring is compared with the members' and the next step is taken. Default 1000 ms. */
  readonly ringSyncIntervalMs: number;
  /** Bytes per second of bulk streaming into this node; 0 = unlimited. Default 32 MiB/s. */
  readonly streamRateLimitBytesPerSec: number;
  /** Records per stream page (the source also bounds a page's bytes). Default 4096. */
  readonly streamPageRecords: number;
  /** Partitions filled at once (each from its own sources). Default 4. */
  readonly transferConcurrency: number;
}

export const DEFAULT_TOPOLOGY_CONFIG: TopologyConfig = {
  partitionBits: 8,
  replicationFactor: 3,
  ringSyncIntervalMs: 1000,
  streamRateLimitBytesPerSec: 32 * 1024 * 1024,
  streamPageRecords: 4096,
  transferConcurrency: 4,
};

/** Filled partitions between two saves of the progress. */
const SAVE_EVERY = 16;
/** Partitions one bulk copy covers at most (a run of consecutive partitions with the same sources). */
const RUN_PARTITIONS_MAX = 64;

/** `work` cut into runs of consecutive partitions with the same sources, each at most `max` long. */
export function runsOf<T extends { readonly partition: number; readonly sources: readonly string[] }>(work: readonly T[], max: number): T[][] {
  const runs: T[][] = [];
  for (const w of [...work].sort((a, b) => a.partition - b.partition)) {
    const run = runs.at(-1);
    const prev = run?.at(-1);
    const same = prev !== undefined && prev.partition + 1 === w.partition && prev.sources.length === w.sources.length && prev.sources.every((id, i) => id === w.sources[i]);
    if (run !== undefined && same && run.length < max) run.push(w);
    else runs.push([w]);
  }
  return runs;
}

/** Why a node stops on its own. */
export type TopologyExitCode =
  /** Its decommission committed: it handed everything over. Exit 0. */
  | 'DECOMMISSIONED'
  /** The ring says it was removed (or is being removed). */
  | 'REMOVED'
  /** Another data dir took over its id (`--replace`). */
  | 'REPLACED'
  /** A new data dir started with the id of a member that has another data dir, without `--replace`. */
  | 'ID_IN_USE'
  /** `--replace` of an id that is no owner. */
  | 'NOT_REPLACEABLE';

export interface TopologyExit {
  readonly code: TopologyExitCode;
  readonly message: string;
}

/** Something worth a log line (the CLI logs these at info, `warn` ones at warn). */
export interface TopologyEvent {
  readonly message: string;
  readonly level: 'info' | 'warn';
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface TopologyDeps {
  readonly store: Store;
  readonly membership: MembershipView;
  readonly peers: PeerFactory;
  readonly clock: Clock;
  readonly persistence: TopologyPersistence;
  /** Repair sessions, for the sources after the first (transfer.ts). */
  readonly repairRange: RepairRange;
  readonly config?: Partial<TopologyConfig>;
  /** The node was started with seeds: without a ring entry it joins the cluster they lead to (else it founds one). */
  readonly seeds: boolean;
  /** `--replace`: a new data dir takes over the member with the store's node id. */
  readonly replace?: boolean;
  /** This node's gossip address, kept in its entry (restart seeds for the others). */
  readonly gossipAddress?: string;
  readonly onError?: (what: string, error: unknown) => void;
  readonly onEvent?: (event: TopologyEvent) => void;
  /** Called once when the node must stop (decommissioned, removed, replaced). */
  readonly onExit?: (exit: TopologyExit) => void;
  /**
   * Hands what this node holds of partitions it does not replicate to their
   * replicas and drops it where `mayDrop` allows (the foreign handoff of
   * anti-entropy). Run once every coordinator acknowledged a placement, and
   * every `CLEANUP_INTERVAL_STEPS` steps after.
   */
  readonly cleanup?: (signal: AbortSignal) => Promise<{ readonly failed: number }>;
}

/** Steps between two cleanups of an unchanged placement (late hints for partitions that moved away). */
const CLEANUP_INTERVAL_STEPS = 30;

/** `/v1/cluster`'s view of one partition transfer. */
export interface TransferView {
  readonly partition: number;
  readonly to: string;
  readonly from: readonly string[];
  readonly state: 'waiting' | 'streaming' | 'done';
}

/** A member's progress, parsed from its `xfer` gossip state. */
interface Progress {
  readonly change: string;
  readonly epoch: string;
  readonly done: number;
  readonly total: number;
  readonly bitmap: Uint8Array | undefined;
}

const BITMAP_PARTITIONS_MAX = 1024;

function parseProgress(text: string | undefined): Progress | undefined {
  if (text === undefined) return undefined;
  const [change, epoch, done, total, bitmap] = text.split(' ');
  if (change === undefined || epoch === undefined || done === undefined || total === undefined) return undefined;
  const d = Number(done);
  const t = Number(total);
  if (!Number.isSafeInteger(d) || !Number.isSafeInteger(t)) return undefined;
  return { change, epoch, done: d, total: t, bitmap: bitmap === undefined || bitmap === '' ? undefined : Uint8Array.from(Buffer.from(bitmap, 'hex')) };
}

function bitmapHas(bitmap: Uint8Array | undefined, p: number): boolean {
  return bitmap !== undefined && ((bitmap[p >> 3] ?? 0) & (1 << (p & 7))) !== 0;
}

/** `<ring hash> <epoch>` of a member's `ring` gossip state. */
function parseRingState(text: string | undefined): { hash: string; epoch: string } | undefined {
  if (text === undefined) return undefined;
  const [hash, epoch] = text.split(' ');
  return hash === undefined ? undefined : { hash, epoch: epoch ?? '' };
}

export class Topology implements Ownership, InternodeTopology {
  readonly config: TopologyConfig;
  readonly #deps: TopologyDeps;
  readonly #selfId: string;
  readonly #limiter: StreamLimiter;
  readonly #listeners = new Set<() => void>();
  #instance = '';
  #fresh = false;
  #ring: Ring = EMPTY_RING;
  #placement: Placement;
  /** Epoch of the ring last saved. */
  #savedEpoch = '';
  #saving: Promise<void> = Promise.resolve();
  /** Writes in flight, by the epoch they started under. */
  readonly #writesInFlight = new Map<string, number>();
  #acked = '';
  #published = '';
  #publishedXfer = '';
  /** Exchanged tables with a live member since start (or needs none). */
  #synced = false;
  #replace: Set<number> | undefined;
  #transfer: { change: string; epoch: string; done: Set<number> } | undefined;
  /** The partitions being filled now, for `/v1/cluster`. */
  readonly #filling = new Set<number>();
  #worker: Promise<void> | undefined;
  #workerAbort: AbortController | undefined;
  #retryAtMs = 0;
  readonly #exchanging = new Set<string>();
  readonly #backoffUntil = new Map<string, number>();
  #cancelTimer: (() => void) | undefined;
  #stepping = false;
  #stepAgain = false;
  #stopped = true;
  #exit: TopologyExit | undefined;
  #unsubscribe: (() => void) | undefined;
  #decommissioned = false;
  #cleanedEpoch = '';
  #stepsSinceCleanup = 0;
  #cleaning: Promise<void> | undefined;
  #cleanupAbort: AbortController | undefined;
  readonly #totals = {
    exchangesOk: 0,
    exchangesFailed: 0,
    partitionsFilled: 0,
    keysStreamed: 0,
    bytesStreamed: 0,
    commits: 0,
  };

  constructor(deps: TopologyDeps) {
    this.#deps = deps;
    this.config = { ...DEFAULT_TOPOLOGY_CONFIG, ...deps.config };
    this.#selfId = deps.membership.selfId;
    this.#limiter = new StreamLimiter(this.config.streamRateLimitBytesPerSec, deps.clock);
    this.#placement = this.#derive(EMPTY_RING);
  }

  // Lifecycle -------------------------------------------------------------------

  /** Loads the saved state (or makes the data dir's instance), then syncs and steps every `ringSyncIntervalMs`. */
  async start(): Promise<void> {
    const saved = await this.#deps.persistence.load();
    if (saved === undefined) {
      this.#fresh = true;
      this.#instance = randomBytes(8).toString('hex');
      if (this.#deps.replace === true) this.#replace = new Set();
    } else {
      this.#instance = saved.instance;
      this.#ring = saved.ring;
      if (saved.replace !== undefined) this.#replace = new Set(saved.replace.done);
      if (saved.transfer !== undefined) this.#transfer = { ...saved.transfer, done: new Set(saved.transfer.done) };
      if (this.#deps.replace === true && saved.replace === undefined) {
        this.#event('warn', '--replace ignored: this data dir already belongs to a member (it is not new)');
      }
    }
    this.#placement = this.#derive(this.#ring);
    this.#savedEpoch = this.#placement.epoch;
    await this.#save();
    for (const l of [...this.#listeners]) l();
    this.#stopped = false;
    this.#unsubscribe = this.#deps.membership.onChange(() => this.#kick());
    this.#publish();
    this.#kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#cancelTimer?.();
    this.#workerAbort?.abort(new Error('stopped'));
    this.#cleanupAbort?.abort(new Error('stopped'));
    await this.#worker?.catch(() => undefined);
    await this.#cleaning;
    await this.#saving.catch(() => undefined);
  }

  /** The saved ring's members' gossip addresses (not this node's, not gone ones): restart seeds. */
  static seedsOf(state: TopologyState | undefined, selfId: string): string[] {
    if (state === undefined) return [];
    return ringEntries(state.ring)
      .filter((e) => e.id !== selfId && e.gossip !== '' && e.status !== 'left' && e.status !== 'removed')
      .map((e) => e.gossip);
  }

  // Ownership -------------------------------------------------------------------

  placement(): Placement {
    return this.#placement;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  writeStarted(placement: Placement): () => void {
    const epoch = placement.epoch;
    this.#writesInFlight.set(epoch, (this.#writesInFlight.get(epoch) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#writesInFlight.get(epoch) ?? 1) - 1;
      if (left <= 0) {
        this.#writesInFlight.delete(epoch);
        if (epoch !== this.#placement.epoch) this.#publish();
      } else this.#writesInFlight.set(epoch, left);
    };
  }

  notServing(): string | undefined {
    if (this.#exit !== undefined) return this.#exit.message;
    const me = this.#ring.get(this.#selfId);
    if (this.#replace !== undefined) {
      const total = this.#partitionsToReplace().length;
      return `replacing ${this.#selfId}: ${this.#replace.size} of ${total} partitions streamed from the other replicas`;
    }
    if (me === undefined) {
      return this.#synced ? 'joining: announcing this node' : 'joining: waiting to exchange the ownership table with a member';
    }
    switch (me.status) {
      case 'joining': {
        const mine = this.#placement.change?.subject === this.#selfId ? this.#placement.transfersTo(this.#selfId).length : 0;
        if (mine === 0) return 'joining: waiting for the changes before this one';
        const missing = this.#gateMissing();
        if (missing.length > 0) return `joining: waiting for ${missing.join(', ')} to acknowledge the new placement`;
        return `joining: ${this.#transfer?.done.size ?? 0} of ${mine} partitions streamed`;
      }
      case 'left':
        return 'this node was decommissioned';
      case 'removing':
      case 'removed':
        return 'this node was removed from the cluster';
      default:
        break;
    }
    if (!this.#synced) return 'waiting to exchange the ownership table with a member';
    return undefined;
  }

  mayDrop(partition: number): boolean {
    return this.#replace === undefined && !this.#placement.replicates(this.#selfId, partition) && this.#gateMissing().length === 0;
  }

  statusOf(member: string): RingStatus | undefined {
    return this.#ring.get(member)?.status;
  }

  // Internode -------------------------------------------------------------------

  exchangeRing(theirs: Ring): Ring {
    this.#adopt(theirs);
    return this.#ring;
  }

  notReadable(keys: readonly string[] | undefined): string | undefined {
    if (this.#replace === undefined) return undefined;
    if (keys === undefined) return `replacing ${this.#selfId}: no listing until every partition is streamed`;
    for (const key of keys) {
      const p = this.#placement.partitionOfHash(hashKey(key));
      if (!this.#replace.has(p)) return `replacing ${this.#selfId}: partition ${p} is not streamed yet`;
    }
    return undefined;
  }

  // Operator actions ---------------------------------------------------------------

  /** Starts (or with `abort`, stops) this node's decommission. */
  async decommission(options: { abort?: boolean } = {}): Promise<Record<string, unknown>> {
    const me = this.#ring.get(this.#selfId);
    const problem = this.notServing();
    if (options.abort === true) {
      if (me?.status !== 'leaving') throw new ServiceError('CONFLICT', `${this.#selfId} is not leaving (${me?.status ?? 'not a member'})`);
      this.#write(me.id, 'normal', me.instance, me.gossip);
      this.#event('info', 'decommission aborted: this node owns its partitions again');
      return this.report();
    }
    if (me?.status === 'leaving') return this.report();
    if (problem !== undefined || me?.status !== 'normal') throw new ServiceError('UNAVAILABLE', `cannot decommission now: ${problem ?? me?.status ?? 'not a member'}`);
    const remaining = ringEntries(this.#ring).filter((e) => e.status === 'normal' && e.id !== this.#selfId).length;
    if (remaining < this.config.replicationFactor) {
      throw new ServiceError(
        'BELOW_REPLICATION_FACTOR',
        `decommissioning ${this.#selfId} would leave ${remaining} owners for replication factor ${this.config.replicationFactor}; add a node first`,
        { owners: remaining, replicationFactor: this.config.replicationFactor },
      );
    }
    this.#write(me.id, 'leaving', me.instance, me.gossip);
    this.#event('info', 'decommission started: the partitions of this node go to their next owners, then it leaves');
    return this.report();
  }

  /** Removes a member that will not come back: its partitions are re-replicated from the survivors. */
  async remove(id: string): Promise<Record<string, unknown>> {
    const e = this.#ring.get(id);
    if (e === undefined) throw new ServiceError('UNKNOWN_MEMBER', `no member ${JSON.stringify(id)} in the ownership table`);
    if (id === this.#selfId) throw new ServiceError('CONFLICT', 'a node does not remove itself: run decommission on it');
    const problem = this.notServing();
    if (problem !== undefined) throw new ServiceError('UNAVAILABLE', `cannot remove now: ${problem}`);
    if (e.status === 'removing') return this.report();
    if (e.status === 'left' || e.status === 'removed') throw new ServiceError('CONFLICT', `${id} is already ${e.status}`);
    const member = this.#deps.membership.members().find((m) => m.id === id);
    if (member !== undefined && isReachable(member)) {
      throw new ServiceError('MEMBER_ALIVE', `${id} is ${member.state}: remove only a member that is down for good (decommission it instead)`);
    }
    this.#write(id, 'removing', e.instance, e.gossip);
    this.#event('info', `removal of ${id} started: its partitions are copied from the other replicas`, { member: id });
    return this.report();
  }

  // Views ------------------------------------------------------------------------

  report(): Record<string, unknown> {
    const placement = this.#placement;
    const change = placement.change;
    const base: Record<string, unknown> = {
      epoch: placement.epoch,
      ring: ringEntries(this.#ring).map((e) => ({ id: e.id, status: e.status, version: e.version })),
      queued: placement.queued.map((c) => ({ kind: c.kind, member: c.subject })),
    };
    if (this.#replace !== undefined) {
      base['replacing'] = { member: this.#selfId, done: this.#replace.size, total: this.#partitionsToReplace().length };
    }
    if (change === undefined) return { ...base, change: null, transfers: [] };
    const transfers = this.#transferViews(placement, change);
    return {
      ...base,
      change: {
        kind: change.kind,
        member: change.subject,
        key: change.key,
        waitingFor: this.#gateMissing(),
        done: transfers.filter((t) => t.state === 'done').length,
        total: transfers.length,
      },
      transfers,
    };
  }

  metrics(): string {
    const t = this.#totals;
    const change = this.#placement.change;
    return [
      ...metricFamily('hearsay_topology_ring_exchanges_total', 'counter', 'Ownership table exchanges with other members, by outcome.', [
        ['outcome="ok"', t.exchangesOk],
        ['outcome="failed"', t.exchangesFailed],
      ]),
      ...metricFamily('hearsay_topology_partitions_streamed_total', 'counter', 'Partitions this node filled (joins, decommissions, removals, replacement).', [['', t.partitionsFilled]]),
      ...metricFamily('hearsay_topology_stream_keys_total', 'counter', 'Records this node received while filling partitions.', [['', t.keysStreamed]]),
      ...metricFamily('hearsay_topology_stream_bytes_total', 'counter', 'Bytes of records this node received while filling partitions.', [['', t.bytesStreamed]]),
      ...metricFamily('hearsay_topology_commits_total', 'counter', 'Membership changes this node committed.', [['', t.commits]]),
      ...metricFamily('hearsay_topology_change_active', 'gauge', 'Whether a membership change is in progress (1) or not (0).', [['', change === undefined ? 0 : 1]]),
      ...metricFamily('hearsay_topology_gate_waiting_members', 'gauge', 'Members that have not acknowledged the current placement.', [['', this.#gateMissing().length]]),
      ...metricFamily('hearsay_topology_transfers_pending', 'gauge', 'Partitions this node still has to fill.', [
        ['', this.#pendingOwnTransfers()],
      ]),
    ].join('\n') + '\n';
  }

  // Internals ---------------------------------------------------------------------

  #derive(ring: Ring): Placement {
    return derivePlacement(ring, { partitionBits: this.config.partitionBits, replicationFactor: this.config.replicationFactor });
  }

  #event(level: 'info' | 'warn', message: string, fields?: Record<string, unknown>): void {
    this.#deps.onEvent?.({ level, message, ...(fields === undefined ? {} : { fields }) });
  }

  /** Merges `theirs` into the ring; a change of placement reaches the coordinator at once, the acknowledgement after the save. */
  #adopt(theirs: Ring): void {
    const { ring, changed } = mergeRings(this.#ring, theirs);
    if (!changed) return;
    this.#setRing(ring);
  }

  #setRing(ring: Ring): void {
    const before = this.#placement;
    this.#ring = ring;
    const after = this.#derive(ring);
    this.#placement = after;
    if (after.epoch !== before.epoch || after.change?.key !== before.change?.key) {
      if (after.change?.key !== before.change?.key && after.change !== undefined) {
        this.#event('info', `membership change: ${after.change.kind} of ${after.change.subject}`, { change: after.change.key });
      }
      for (const l of [...this.#listeners]) l();
    }
    void this.#save().catch((e: unknown) => this.#deps.onError?.('saving the ownership table', e));
    this.#publish();
    this.#kick();
  }

  /** Writes an entry this node is entitled to write, above every version it knows. */
  #write(id: string, status: RingStatus, instance: string, gossip: string): void {
    this.#setRing(withEntry(this.#ring, nextEntry(this.#ring, { id, status, by: this.#selfId, instance, gossip })));
  }

  #save(): Promise<void> {
    const state: TopologyState = {
      instance: this.#instance,
      ring: this.#ring,
      ...(this.#replace === undefined ? {} : { replace: { done: [...this.#replace] } }),
      ...(this.#transfer === undefined ? {} : { transfer: { ...this.#transfer, done: [...this.#transfer.done] } }),
    };
    const epoch = this.#derive(state.ring).epoch;
    const run = this.#saving.catch(() => undefined).then(async () => {
      await this.#deps.persistence.save(state);
      this.#savedEpoch = epoch;
      this.#publish();
    });
    this.#saving = run;
    return run;
  }

  /** Publishes `ring` (hash, acknowledged epoch) and `xfer` when they changed. */
  #publish(): void {
    const epoch = this.#placement.epoch;
    let olderInFlight = false;
    for (const [e, n] of this.#writesInFlight) if (e !== epoch && n > 0) olderInFlight = true;
    if (this.#savedEpoch === epoch && !olderInFlight) this.#acked = epoch;
    const text = `${ringHash(this.#ring)} ${this.#acked}`;
    if (text !== this.#published) {
      this.#published = text;
      this.#deps.membership.publish?.(GOSSIP_STATE_RING, text);
    }
    const xfer = this.#progressText();
    if (xfer !== this.#publishedXfer) {
      this.#publishedXfer = xfer;
      this.#deps.membership.publish?.(GOSSIP_STATE_XFER, xfer);
    }
  }

  #progressText(): string {
    const change = this.#placement.change;
    const t = this.#transfer;
    if (change === undefined || t === undefined || t.change !== change.key) return '';
    const total = this.#placement.transfersTo(this.#selfId).length;
    let bitmap = '';
    if (this.#placement.partitionCount <= BITMAP_PARTITIONS_MAX) {
      const bits = new Uint8Array(Math.ceil(this.#placement.partitionCount / 8));
      for (const p of t.done) bits[p >> 3] = (bits[p >> 3] ?? 0) | (1 << (p & 7));
      bitmap = Buffer.from(bits).toString('hex');
    }
    return `${t.change} ${t.epoch} ${t.done.size} ${total} ${bitmap}`;
  }

  /** Runs a step soon (coalesced), and schedules the periodic one. */
  #kick(): void {
    if (this.#stopped) return;
    if (this.#stepping) {
      this.#stepAgain = true;
      return;
    }
    this.#stepping = true;
    void (async () => {
      try {
        do {
          this.#stepAgain = false;
          await this.#step();
        } while (this.#stepAgain && !this.#stopped);
      } catch (e) {
        this.#deps.onError?.('topology step', e);
      } finally {
        this.#stepping = false;
        this.#schedule();
      }
    })();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#cancelTimer?.();
    this.#cancelTimer = this.#deps.clock.setTimer(() => this.#kick(), this.config.ringSyncIntervalMs);
  }

  #members(): Map<string, MemberInfo> {
    return new Map(this.#deps.membership.members().map((m) => [m.id, m]));
  }

  /** The client of a member reachable now (never this node). */
  #peer(id: string): PeerClient | undefined {
    if (id === this.#selfId) return undefined;
    const m = this.#members().get(id);
    if (m === undefined || !isReachable(m) || m.http === '') return undefined;
    return this.#deps.peers(m);
  }

  async #step(): Promise<void> {
    if (this.#exit !== undefined) return;
    await this.#sync();
    if (this.#stopped || this.#exit !== undefined) return;
    this.#checkSelf();
    if (this.#exit !== undefined) return;
    this.#publish();
    this.#runWork();
    await this.#maybeCommit();
    this.#maybeCleanup();
  }

  /** Pushes and drops what this node holds of partitions it no longer replicates, once every coordinator moved on. */
  #maybeCleanup(): void {
    const cleanup = this.#deps.cleanup;
    if (cleanup === undefined || this.#cleaning !== undefined || this.#worker !== undefined || this.#replace !== undefined) return;
    const epoch = this.#placement.epoch;
    this.#stepsSinceCleanup++;
    if (epoch === this.#cleanedEpoch && this.#stepsSinceCleanup < CLEANUP_INTERVAL_STEPS) return;
    if (this.#notServingOwner() || this.#gateMissing().length > 0) return;
    this.#stepsSinceCleanup = 0;
    const abort = new AbortController();
    this.#cleanupAbort = abort;
    this.#cleaning = cleanup(abort.signal)
      .then((r) => {
        if (r.failed === 0) this.#cleanedEpoch = epoch;
      })
      .catch((e: unknown) => {
        if (!abort.signal.aborted) this.#deps.onError?.('handing off partitions this node no longer replicates', e);
      })
      .finally(() => {
        this.#cleaning = undefined;
      });
  }

  /** True while this node is not a serving owner (joining, replacing, gone): it has nothing to clean. */
  #notServingOwner(): boolean {
    const s = this.#ring.get(this.#selfId)?.status;
    return s !== 'normal' && s !== 'leaving';
  }

  /** Exchanges rings with the live members that publish another hash. */
  async #sync(): Promise<void> {
    const mine = ringHash(this.#ring);
    const others = [...this.#members().values()].filter((m) => m.id !== this.#selfId && isReachable(m) && m.http !== '');
    if (!this.#synced && others.length === 0 && ringEntries(this.#ring).every((e) => e.id === this.#selfId || e.status === 'left' || e.status === 'removed')) {
      // Nobody else owns anything: a cluster of one (or a first node) needs no exchange.
      if (!this.#deps.seeds || this.#ring.get(this.#selfId)?.status === 'normal') this.#synced = true;
    }
    const now = this.#deps.clock.now();
    const exchanges: Promise<void>[] = [];
    for (const m of others) {
      const theirs = parseRingState(m.ring);
      if (theirs === undefined) continue;
      if (theirs.hash === mine) {
        this.#synced = true;
        continue;
      }
      if (this.#exchanging.has(m.id) || (this.#backoffUntil.get(m.id) ?? 0) > now || exchanges.length >= 3) continue;
      exchanges.push(this.#exchangeWith(m));
    }
    await Promise.all(exchanges);
  }

  async #exchangeWith(m: MemberInfo): Promise<void> {
    this.#exchanging.add(m.id);
    try {
      const theirs = await this.#deps.peers(m).ring(this.#ring);
      this.#totals.exchangesOk++;
      this.#backoffUntil.delete(m.id);
      this.#adopt(theirs);
      this.#synced = true;
    } catch (e) {
      this.#totals.exchangesFailed++;
      this.#backoffUntil.set(m.id, this.#deps.clock.now() + this.config.ringSyncIntervalMs);
      this.#deps.onError?.(`exchanging the ownership table with ${m.id}`, e);
    } finally {
      this.#exchanging.delete(m.id);
    }
  }

  #fence(code: TopologyExitCode, message: string): void {
    if (this.#exit !== undefined) return;
    this.#exit = { code, message };
    this.#workerAbort?.abort(new Error(message));
    this.#cleanupAbort?.abort(new Error(message));
    this.#event(code === 'DECOMMISSIONED' ? 'info' : 'warn', message);
    this.#deps.onExit?.(this.#exit);
  }

  /** This node's own entry: found a cluster, announce a join, take over an id, or notice it is gone. */
  #checkSelf(): void {
    const me = this.#ring.get(this.#selfId);
    const gossip = this.#deps.gossipAddress ?? '';
    if (me === undefined) {
      if (this.#replace !== undefined) {
        if (this.#synced) this.#fence('NOT_REPLACEABLE', `--replace ${this.#selfId}: no such member in the ownership table`);
        return;
      }
      const others = ringEntries(this.#ring).filter((e) => e.status !== 'left' && e.status !== 'removed');
      if (!this.#deps.seeds && others.length === 0) {
        this.#write(this.#selfId, 'normal', this.#instance, gossip);
        this.#event('info', 'a new cluster: this node owns every partition');
      } else if (this.#synced) {
        this.#write(this.#selfId, 'joining', this.#instance, gossip);
        this.#event('info', 'joining the cluster: waiting for its turn, then streaming the partitions this node takes over');
      }
      return;
    }
    if (me.status === 'left') {
      if (this.#decommissioned) return;
      this.#fence('DECOMMISSIONED', `${this.#selfId} was decommissioned: wipe its data dir to add the machine again`);
      return;
    }
    if (me.status === 'removed' || me.status === 'removing') {
      this.#fence('REMOVED', `${this.#selfId} was removed from the cluster: wipe its data dir to add the machine again`);
      return;
    }
    if (me.instance !== this.#instance) {
      if (this.#replace !== undefined) {
        if (me.status !== 'normal' && me.status !== 'leaving') {
          this.#fence('NOT_REPLACEABLE', `--replace ${this.#selfId}: the member is ${me.status}; only an owner can be replaced`);
          return;
        }
        this.#write(me.id, me.status, this.#instance, gossip);
        this.#event('info', `replacing ${this.#selfId}: streaming its partitions from the other replicas`);
        return;
      }
      if (!this.#synced) return;
      this.#fence(
        this.#fresh ? 'ID_IN_USE' : 'REPLACED',
        this.#fresh
          ? `node id ${this.#selfId} belongs to a member with another data dir; to take over its place after losing its disk, start with --replace ${this.#selfId}`
          : `another data dir took over node id ${this.#selfId} (--replace); this one must not serve: wipe it`,
      );
      return;
    }
    if (gossip !== '' && me.gossip !== gossip && this.#synced && (me.status === 'normal' || me.status === 'joining')) {
      this.#write(me.id, me.status, me.instance, gossip);
    }
  }

  /** Gate members: the ring's coordinators, and while nobody owns anything yet every member in sight (docs/topology.md). */
  #gateMembers(): string[] {
    const placement = this.#placement;
    if (placement.owners.length > 0) return [...placement.gateMembers];
    const out = new Set<string>();
    for (const e of this.#ring.values()) if (e.status === 'joining') out.add(e.id);
    for (const m of this.#deps.membership.members()) if (isReachable(m) && !this.#ring.has(m.id)) out.add(m.id);
    return [...out].sort();
  }

  /** The gate members that have not acknowledged the current epoch. */
  #gateMissing(): string[] {
    const epoch = this.#placement.epoch;
    const members = this.#members();
    return this.#gateMembers().filter((id) => {
      if (id === this.#selfId) return this.#acked !== epoch;
      return parseRingState(members.get(id)?.ring)?.epoch !== epoch;
    });
  }

  #partitionsToReplace(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.#placement.partitionCount; p++) if (this.#placement.replicates(this.#selfId, p)) out.push(p);
    return out;
  }

  #pendingOwnTransfers(): number {
    if (this.#replace !== undefined) return this.#partitionsToReplace().length - this.#replace.size;
    const change = this.#placement.change;
    if (change === undefined) return 0;
    const done = this.#transfer?.change === change.key ? this.#transfer.done : new Set<number>();
    return this.#placement.transfersTo(this.#selfId).filter((t) => !done.has(t.partition)).length;
  }

  /** Starts filling what this node has to fill, when it may and nothing runs. */
  #runWork(): void {
    if (this.#worker !== undefined || this.#stopped) return;
    if (this.#deps.clock.now() < this.#retryAtMs) return;
    if (this.#replace !== undefined) {
      if (this.#ring.get(this.#selfId)?.instance !== this.#instance || !this.#synced) return;
      this.#startWorker(() => this.#fillReplacement());
      return;
    }
    const placement = this.#placement;
    const change = placement.change;
    if (change === undefined) return;
    const mine = placement.transfersTo(this.#selfId);
    if (mine.length === 0) return;
    if (this.#transfer?.change !== change.key || this.#transfer.epoch !== placement.epoch) {
      this.#transfer = { change: change.key, epoch: placement.epoch, done: new Set() };
      void this.#save().catch((e: unknown) => this.#deps.onError?.('saving transfer progress', e));
    }
    if (mine.every((t) => this.#transfer!.done.has(t.partition))) return;
    if (this.#gateMissing().length > 0) return;
    this.#startWorker(() => this.#fillTransfers(placement, change));
  }

  #startWorker(work: (signal: AbortSignal) => Promise<void>): void {
    const abort = new AbortController();
    this.#workerAbort = abort;
    this.#worker = work(abort.signal)
      .catch((e: unknown) => {
        if (!abort.signal.aborted) this.#deps.onError?.('filling partitions', e);
      })
      .finally(() => {
        this.#worker = undefined;
        this.#filling.clear();
        this.#publish();
        this.#kick();
      });
  }

  #fillDeps(): Parameters<typeof fillPartition>[0] {
    return {
      store: this.#deps.store,
      peer: (id) => this.#peer(id),
      repairRange: this.#deps.repairRange,
      clock: this.#deps.clock,
      limiter: this.#limiter,
      pageRecords: this.config.streamPageRecords,
      ...(this.#deps.onError === undefined ? {} : { onError: this.#deps.onError }),
    };
  }

  async #fillTransfers(placement: Placement, change: ActiveChange): Promise<void> {
    const progress = this.#transfer!;
    const mine = placement.transfersTo(this.#selfId).filter((t) => !progress.done.has(t.partition));
    if (progress.done.size === 0) {
      this.#event('info', `streaming ${mine.length} partitions for the ${change.kind} of ${change.subject}`, { change: change.key });
    }
    const current = (): boolean => !this.#stopped && this.#placement.epoch === placement.epoch && this.#placement.change?.key === change.key && this.#transfer === progress;
    const failed = await this.#fillAll(
      mine.map((t) => ({ partition: t.partition, sources: t.sources, enough: (reached: ReadonlySet<string>) => covered(t, reached) })),
      current,
      (p) => progress.done.add(p),
    );
    if (!current()) return;
    if (failed > 0) this.#retryAtMs = this.#deps.clock.now() + this.config.ringSyncIntervalMs;
    else this.#event('info', `streamed every partition for the ${change.kind} of ${change.subject}`, { change: change.key });
  }

  async #fillReplacement(): Promise<void> {
    const replace = this.#replace!;
    const work = this.#partitionsToReplace()
      .filter((p) => !replace.has(p))
      .map((p) => {
        const sources = this.#placement.sets(p).all.filter((id) => id !== this.#selfId && !this.#placement.removing.has(id)).sort();
        // Every other replica: a write acknowledged by the old member and one other is only on that one.
        return { partition: p, sources, enough: (reached: ReadonlySet<string>) => sources.every((id) => reached.has(id)) };
      });
    const failed = await this.#fillAll(work, () => !this.#stopped, (p) => replace.add(p));
    if (this.#stopped) return;
    if (failed > 0) {
      this.#retryAtMs = this.#deps.clock.now() + this.config.ringSyncIntervalMs;
      return;
    }
    this.#replace = undefined;
    await this.#save();
    this.#event('info', `replaced ${this.#selfId}: every partition streamed, serving`);
    for (const l of [...this.#listeners]) l();
  }

  /**
   * Fills `work`: runs of consecutive partitions with the same sources
   * (one bulk copy each), `transferConcurrency` runs at once, while
   * `current()`; `done(p)` records each filled partition (published at once,
   * saved every `SAVE_EVERY` partitions and at the end: the records
   * themselves are durable before a partition counts, so a lost progress
   * mark only means copying that partition again). Returns how many
   * partitions could not be filled.
   */
  async #fillAll(
    work: readonly { partition: number; sources: readonly string[]; enough: (reached: ReadonlySet<string>) => boolean }[],
    current: () => boolean,
    done: (partition: number) => void,
  ): Promise<number> {
    const runs = runsOf(work, RUN_PARTITIONS_MAX);
    let next = 0;
    let failed = 0;
    let unsaved = 0;
    const bucketBits = this.#deps.store.bucketBits;
    const lane = async (): Promise<void> => {
      while (next < runs.length && current()) {
        const run = runs[next++]!;
        const sources = run[0]!.sources;
        const parts = run.map((w) => ({ partition: w.partition, enough: w.enough, ...this.#placement.current.bucketRange(w.partition, bucketBits) }));
        for (const p of parts) this.#filling.add(p.partition);
        let result: Awaited<ReturnType<typeof fillPartition>>;
        try {
          result = await fillPartition(this.#fillDeps(), {
            parts,
            sources,
            ...(this.#workerAbort === undefined ? {} : { signal: this.#workerAbort.signal }),
          });
        } finally {
          for (const p of parts) this.#filling.delete(p.partition);
        }
        this.#totals.keysStreamed += result.keys;
        this.#totals.bytesStreamed += result.bytes;
        if (!current()) return;
        for (const part of parts) {
          const reached = result.reached.get(part.partition) ?? new Set<string>();
          if (!part.enough(reached) || (sources.length > 0 && reached.size === 0)) {
            failed++;
            continue;
          }
          this.#totals.partitionsFilled++;
          done(part.partition);
          unsaved++;
        }
        this.#publish();
        if (unsaved >= SAVE_EVERY) {
          unsaved = 0;
          await this.#save();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.config.transferConcurrency) }, lane));
    if (unsaved > 0 && current()) await this.#save();
    return failed;
  }

  /** Whether every gainer of the active change reported every partition done. */
  #gainersDone(placement: Placement, change: ActiveChange): boolean {
    const members = this.#members();
    const gainers = new Set(placement.transfers().map((t) => t.to));
    for (const g of gainers) {
      const total = placement.transfersTo(g).length;
      if (g === this.#selfId) {
        if (this.#transfer?.change !== change.key || this.#transfer.epoch !== placement.epoch || this.#transfer.done.size < total) return false;
        continue;
      }
      const p = parseProgress(members.get(g)?.xfer);
      if (p === undefined || p.change !== change.key || p.epoch !== placement.epoch || p.done < total) return false;
    }
    return true;
  }

  /** Who commits the active change: its subject, or for a removal the lowest-id reachable coordinator. */
  #committer(change: ActiveChange): string | undefined {
    if (change.kind !== 'remove') return change.subject;
    const members = this.#members();
    return this.#placement.gateMembers.find((id) => id === this.#selfId || isReachable(members.get(id)));
  }

  async #maybeCommit(): Promise<void> {
    const placement = this.#placement;
    const change = placement.change;
    if (change === undefined || this.#committer(change) !== this.#selfId) return;
    if (change.kind === 'join' && this.#ring.get(this.#selfId)?.status !== 'joining') return;
    if (this.#gateMissing().length > 0 || !this.#gainersDone(placement, change)) return;
    const e = this.#ring.get(change.subject)!;
    const status: RingStatus = change.kind === 'join' ? 'normal' : change.kind === 'decommission' ? 'left' : 'removed';
    if (change.kind === 'decommission') this.#decommissioned = true;
    this.#write(e.id, status, e.instance, e.gossip);
    this.#totals.commits++;
    this.#event('info', change.kind === 'join' ? 'joined: this node now owns its partitions' : `${change.kind} of ${change.subject} committed`, { change: change.key });
    if (change.kind === 'decommission') await this.#handOverAndLeave();
  }

  /** After its decommission committed: make sure a live member has the ring, then stop. */
  async #handOverAndLeave(): Promise<void> {
    for (let attempt = 0; attempt < 20 && !this.#stopped; attempt++) {
      let told = 0;
      for (const m of this.#members().values()) {
        if (m.id === this.#selfId || !isReachable(m) || m.http === '') continue;
        try {
          // The receiver merges before it answers: once this resolves, it has the commit.
          await this.#deps.peers(m).ring(this.#ring);
          told++;
        } catch (e) {
          this.#deps.onError?.(`handing the ownership table to ${m.id}`, e);
        }
      }
      if (told > 0) break;
      await new Promise<void>((resolve) => this.#deps.clock.setTimer(resolve, this.config.ringSyncIntervalMs));
    }
    this.#fence('DECOMMISSIONED', `${this.#selfId} is decommissioned: its partitions are on their new owners`);
  }

  #transferViews(placement: Placement, change: ActiveChange): TransferView[] {
    const members = this.#members();
    const progress = new Map<string, Progress | undefined>();
    const view = (t: PartitionTransfer): TransferView => {
      let state: TransferView['state'] = 'waiting';
      if (t.to === this.#selfId) {
        if (this.#transfer?.change === change.key && this.#transfer.done.has(t.partition)) state = 'done';
        else if (this.#filling.has(t.partition)) state = 'streaming';
      } else {
        if (!progress.has(t.to)) progress.set(t.to, parseProgress(members.get(t.to)?.xfer));
        const p = progress.get(t.to);
        if (p !== undefined && p.change === change.key && p.epoch === placement.epoch && (p.done >= p.total || bitmapHas(p.bitmap, t.partition))) state = 'done';
      }
      return { partition: t.partition, to: t.to, from: t.sources, state };
    };
    return placement.transfers().map(view);
  }
}

export type { RingEntry };
