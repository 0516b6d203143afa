import { createHash } from 'node:crypto';
import type { Store, StoredRecord } from '@hearsay/storage';
import { isReachable, type MembershipView } from './membership.ts';
import type { Placement } from './placement.ts';
import type { PeerFactory } from './peer.ts';

/**
 * Data this node holds for partitions it does not replicate ("foreign"
 * data) is pushed to the partition's replicas. It arrives when views
 * disagree for a moment — a node that just restarted and sees only part of
 * the cluster computes another preference list and may coordinate a write
 * onto itself — and when ownership moves (join, leave): the old owner keeps
 * its copy. Repair only runs between a partition's replicas, so without this
 * push such records would stay where no read looks for them (the simulation
 * lost an acknowledged write that way).
 *
 * The push is one-way (LWW `write` on each replica — of the old and the new
 * set while the partition moves — idempotent). A partition is pushed again
 * only when its local digests or its replica set changed since the last push
 * every replica acknowledged. Once every replica took it and `mayDrop` says
 * no coordinator can read the partition from this node any more (the gate
 * of docs/topology.md passed), the local copy is dropped (`store.dropRange`)
 * so every key ends on exactly RF replicas; until then it stays, never read
 * and harmless (LWW ignores it wherever something newer exists).
 */
export interface ForeignHandoffResult {
  /** Foreign partitions holding data. */
  readonly partitions: number;
  /** Records pushed (counted once per replica). */
  readonly keysSent: number;
  /** Partitions whose push did not reach every replica. */
  readonly failed: number;
  /** Records dropped from this node after every replica took them. */
  readonly dropped: number;
}

const RECORDS_PER_WRITE = 128;

export class ForeignHandoff {
  readonly #store: Store;
  readonly #membership: MembershipView;
  readonly #peers: PeerFactory;
  /** partition -> fingerprint of (digests, replicas) last pushed to every replica. Bounded by the partition count. */
  readonly #pushed = new Map<number, string>();

  constructor(store: Store, membership: MembershipView, peers: PeerFactory) {
    this.#store = store;
    this.#membership = membership;
    this.#peers = peers;
  }

  async run(placement: Placement, signal?: AbortSignal, mayDrop?: (partition: number) => boolean): Promise<ForeignHandoffResult> {
    const selfId = this.#membership.selfId;
    let partitions = 0;
    let keysSent = 0;
    let failed = 0;
    let dropped = 0;
    for (let p = 0; p < placement.partitionCount; p++) {
      signal?.throwIfAborted();
      const replicas = placement.sets(p).all;
      if (replicas.includes(selfId)) {
        this.#pushed.delete(p);
        continue;
      }
      const { fromBucket, toBucket } = placement.current.bucketRange(p, this.#store.bucketBits);
      const digests = await this.#store.bucketDigests(fromBucket, toBucket);
      const busy = digests.flatMap((d, i) => (d.some((b) => b !== 0) ? [fromBucket + i] : []));
      if (busy.length === 0) {
        this.#pushed.delete(p);
        continue;
      }
      partitions++;
      const fp = createHash('sha256');
      for (const d of digests) fp.update(d);
      const fingerprint = `${fp.digest('hex')}|${replicas.join(',')}`;
      if (this.#pushed.get(p) === fingerprint) {
        if (mayDrop?.(p) === true) dropped += await this.#drop(p, fromBucket, toBucket);
        continue;
      }
      const records: StoredRecord[] = [];
      const keys = (await this.#store.bucketEntriesMany(busy)).flatMap((entries) => entries.map((e) => e.key));
      for (const r of await this.#store.getRecords(keys)) if (r !== undefined) records.push(r);
      const members = new Map(this.#membership.members().map((m) => [m.id, m]));
      let ok = true;
      for (const id of replicas) {
        const m = members.get(id);
        if (m === undefined || !isReachable(m)) {
          ok = false;
          continue;
        }
        try {
          for (let i = 0; i < records.length; i += RECORDS_PER_WRITE) {
            const chunk = records.slice(i, i + RECORDS_PER_WRITE);
            const outcomes = await this.#peers(m).write(chunk);
            keysSent += chunk.length;
            // A record the replica refused (too far ahead of its clock) is not handed over: push again next time.
            if (outcomes.some((o) => o !== null && 'aheadMs' in o)) ok = false;
          }
        } catch {
          ok = false;
        }
      }
      if (ok) {
        this.#pushed.set(p, fingerprint);
        if (mayDrop?.(p) === true) dropped += await this.#drop(p, fromBucket, toBucket);
      } else failed++;
    }
    return { partitions, keysSent, failed, dropped };
  }

  /**
   * Drops what this node holds of a partition every replica took. Records
   * that arrived after the push (a late hint) would go too; they are copies
   * of writes acknowledged elsewhere, since no coordinator counts this node
   * for the partition any more.
   */
  async #drop(p: number, fromBucket: number, toBucket: number): Promise<number> {
    this.#pushed.delete(p);
    return this.#store.dropRange({ fromBucket, toBucket });
  }
}
