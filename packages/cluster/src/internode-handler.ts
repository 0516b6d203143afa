import { compareVersions, type ApplyOutcome, type Store, type StoredRecord } from '@hearsay/storage';
import { ClusterError } from './errors.ts';
import type { HintStore } from './hint-store.ts';
import { encodeWriteAnswer, recordBytes, type InternodeRequest } from './internode-messages.ts';
import type { ReplicaOutcome } from './peer.ts';
import { encodeRing, type Ring } from './ring.ts';
import { readStreamPage } from './stream.ts';
import { scanLocal } from './scan.ts';
import type { StoreWriteHealth } from './store-health.ts';
import type { Clock } from '@hearsay/clock';

/** Answers one repair-session request from another node (the repair package's responder). */
export type RepairResponder = (message: unknown) => Promise<unknown>;

export interface InternodeHandlerDeps {
  readonly store: Store;
  readonly hints: HintStore;
  readonly clock: Clock;
  readonly repair?: RepairResponder;
  /** A purge request never purges tombstones younger than this, whatever the sender says. */
  readonly tombstoneGraceMs: number;
  /**
   * Bytes of records in one answer (read, scan): past it a read answers a
   * prefix of its keys (the caller asks again for the rest) and a scan a
   * shorter page with `more`. At least one record is always answered.
   * Unbounded when left out.
   */
  readonly maxAnswerBytes?: number;
  /** Told whether writes to the store and the hints succeed. */
  readonly storeHealth?: StoreWriteHealth;
  /** The ownership table's side of the internode API (topology.ts); absent on a node without one. */
  readonly topology?: InternodeTopology;
}

/** What the internode routes need of the topology. */
export interface InternodeTopology {
  /** Merges a peer's table and answers this node's (after the merge). */
  exchangeRing(theirs: Ring): Ring;
  /**
   * Why this node must not answer reads of these keys (or listings, for
   * `undefined`) yet: it is filling the replicas it takes over. Undefined
   * when it may.
   */
  notReadable(keys: readonly string[] | undefined): string | undefined;
}

/**
 * Serves internode requests against this node's store and hint store. The
 * same handler sits behind the HTTP routes (internode-app.ts) and behind the
 * simulated network, so both carry exactly the same behaviour.
 */
export function createInternodeHandler(deps: InternodeHandlerDeps): (request: InternodeRequest) => Promise<unknown> {
  const maxAnswerBytes = deps.maxAnswerBytes ?? Infinity;
  const observe = <T>(work: Promise<T>): Promise<T> => deps.storeHealth?.observe(work) ?? work;
  return async (request) => {
    switch (request.type) {
      case 'write': {
        // Each record on its own: one refused as too far ahead must not fail the others batched with it.
        const outcomes = await observe(deps.store.applyEach(request.records));
        return encodeWriteAnswer(outcomes.map((o, i) => replicaOutcome(o, request.records[i] as StoredRecord)));
      }
      case 'read': {
        refuseUnreadable(deps.topology?.notReadable(request.keys));
        const records = await deps.store.getRecords(request.keys);
        return { records: fitting(records, maxAnswerBytes).map((r) => r ?? null) };
      }
      case 'hint': {
        // A hint the target would refuse (a version too far ahead of this node's clock) is refused here, not kept for hours.
        const nowMs = deps.clock.now();
        const { maxOffsetMs } = deps.store.clockStatus();
        const kept = await observe(deps.hints.add(request.target, request.records, nowMs, maxOffsetMs));
        const aheadMs = Math.max(...request.records.map((r) => r.version.ms - nowMs));
        return aheadMs > maxOffsetMs ? { kept, aheadMs } : { kept };
      }
      case 'scan': {
        refuseUnreadable(deps.topology?.notReadable(undefined));
        const page = await scanLocal(deps.store, request);
        const records = fitting(page.records, maxAnswerBytes) as StoredRecord[];
        return records.length < page.records.length ? { records, more: true } : page;
      }
      case 'repair': {
        if (deps.repair === undefined) throw new Error('repair is not served by this node');
        return { message: await deps.repair(request.message) };
      }
      case 'purge': {
        const beforeMs = Math.floor(Math.min(request.beforeMs, deps.clock.now() - deps.tombstoneGraceMs));
        if (beforeMs <= 0) return { purged: 0 };
        const purged = await deps.store.purgeTombstones({ beforeMs, fromBucket: request.fromBucket, toBucket: request.toBucket });
        return { purged };
      }
      case 'ring': {
        if (deps.topology === undefined) throw new ClusterError('NOT_READY', 'this node keeps no ownership table');
        return { ring: encodeRing(deps.topology.exchangeRing(request.ring)) };
      }
      case 'stream':
        return readStreamPage(deps.store, request, maxAnswerBytes);
      default: {
        const never: never = request;
        throw new Error(`unhandled ${String(never)}`);
      }
    }
  };
}

function refuseUnreadable(reason: string | undefined): void {
  if (reason !== undefined) throw new ClusterError('NOT_READY', reason);
}

/** What a replica tells the writer: the store's outcome, with "held the same record" as applied. */
export function replicaOutcome(o: ApplyOutcome, sent: StoredRecord): ReplicaOutcome {
  switch (o.status) {
    case 'applied':
      return null;
    case 'held':
      return compareVersions(o.version, sent.version) === 0 ? null : { held: o.version, tombstone: o.tombstone };
    case 'refused':
      return { aheadMs: o.aheadMs };
    default: {
      const never: never = o;
      throw new Error(`unknown outcome ${String(never)}`);
    }
  }
}

/** The longest prefix of `records` within `maxBytes`, and at least one. */
function fitting(records: readonly (StoredRecord | undefined)[], maxBytes: number): readonly (StoredRecord | undefined)[] {
  let bytes = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    bytes += r === undefined ? 16 : recordBytes(r);
    if (bytes > maxBytes && i > 0) return records.slice(0, i);
  }
  return records;
}
