/**
 * The nonces of authenticated internode requests whose timestamps are still
 * inside the accepted window, so a captured request sent again is refused.
 *
 * Bounded: at most `maxEntries` nonces (about 100 bytes each in V8, so the
 * default 100 000 is ~10 MiB). A request is remembered until its timestamp
 * leaves the window (`windowMs` after it); when the cache is full, the
 * nonce that arrived first is forgotten and its timestamp becomes a floor:
 * from then on, a request stamped at or before the floor is refused as too
 * old, so a forgotten nonce can never be replayed. Under a normal load the
 * cache holds the whole window and the floor stays below it; only a cluster
 * sending more than `maxEntries` requests per window to one node tightens
 * how far a sender's clock may lag.
 *
 * Only requests whose signature checked out take room here, so an outsider
 * without the key cannot fill it.
 */
export type NonceVerdict = 'fresh' | 'replayed' | 'too_old';

export const DEFAULT_MAX_NONCES = 100_000;

export class NonceCache {
  readonly maxEntries: number;
  readonly windowMs: number;
  /** Nonce → its request's timestamp, in arrival order. */
  readonly #seen = new Map<string, number>();
  #floorMs = -Infinity;
  /** Counters for /metrics. */
  replays = 0;
  tooOld = 0;
  forgotten = 0;

  constructor(windowMs: number, maxEntries = DEFAULT_MAX_NONCES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a whole number of at least 1');
    this.windowMs = windowMs;
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Requests stamped at or before this are refused (the cache forgot nonces up to it). */
  get floorMs(): number {
    return this.#floorMs;
  }

  /** Records the nonce of an authenticated request stamped `timestampMs`: fresh, or refused. */
  admit(nonce: string, timestampMs: number, nowMs: number): NonceVerdict {
    this.#expire(nowMs);
    if (timestampMs <= this.#floorMs) {
      this.tooOld++;
      return 'too_old';
    }
    if (this.#seen.has(nonce)) {
      this.replays++;
      return 'replayed';
    }
    if (this.#seen.size >= this.maxEntries) {
      const [oldest, stamp] = this.#seen.entries().next().value as [string, number];
      this.#seen.delete(oldest);
      this.forgotten++;
      if (stamp > this.#floorMs) this.#floorMs = stamp;
    }
    this.#seen.set(nonce, timestampMs);
    return 'fresh';
  }

  /** Drops nonces from the front whose timestamps left the window: such requests are refused as stale anyway. */
  #expire(nowMs: number): void {
    const oldestAllowed = nowMs - this.windowMs;
    for (const [nonce, stamp] of this.#seen) {
      if (stamp >= oldestAllowed) return;
      this.#seen.delete(nonce);
    }
  }
}
