/**
 * The tombstone purge rule.
 *
 * A tombstone may be dropped only when no replica can bring the deleted value
 * back. Two conditions, both required:
 *
 * 1. Every other replica of the partition (as the current preference list
 *    says) completed a repair session with this node whose "equal up to"
 *    cut-off covers the tombstone: that replica then holds the tombstone (or
 *    something newer) too, so it will not hand the old value back to us.
 * 2. The tombstone is older than the grace period. This covers what a repair
 *    cannot see: hints still on their way (the grace period must be at least
 *    the hint window, so any hint older than the tombstone has been delivered
 *    or dropped) and writes in flight.
 *
 * So the purge cut-off of a partition is
 *   min(now - grace, min over the other replicas of their last cut-off)
 * and nothing is purged while any replica has no completed session. A replica
 * that was away longer than the grace period must be wiped before it rejoins
 * (as with Cassandra's gc_grace_seconds); see docs/operations.md.
 */
export class TombstoneLedger {
  /** partition -> replica id -> cut-off ms of the last completed session. */
  readonly #cutoffs = new Map<number, Map<string, number>>();

  recordSession(partition: number, replica: string, equalUpToMs: number): void {
    let m = this.#cutoffs.get(partition);
    if (m === undefined) this.#cutoffs.set(partition, (m = new Map()));
    m.set(replica, Math.max(m.get(replica) ?? 0, equalUpToMs));
  }

  /** The purge cut-off, or undefined when some replica has not completed a session yet. */
  purgeCutoffMs(partition: number, replicas: readonly string[], selfId: string, nowMs: number, graceMs: number): number | undefined {
    let cutoff = nowMs - graceMs;
    const m = this.#cutoffs.get(partition);
    for (const r of replicas) {
      if (r === selfId) continue;
      const c = m?.get(r);
      if (c === undefined) return undefined;
      cutoff = Math.min(cutoff, c);
    }
    return cutoff > 0 ? cutoff : undefined;
  }
}
