// Lifeguard suspicion timeouts (memberlist suspicion.go): a suspicion starts at
// `maxMs` and shrinks towards `minMs` as independent members confirm it, so a
// member many others cannot reach is declared dead sooner, while a lone
// accuser (perhaps the struggling one) waits longest.

/** Lower suspicion timeout: suspicionMult · max(1, log10(n)) · probeInterval (memberlist). */
export function suspicionTimeoutMs(suspicionMult: number, n: number, probeIntervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(suspicionMult * nodeScale * probeIntervalMs);
}

/**
 * Remaining time of a suspicion with `confirmations` of the `expected` (k)
 * independent confirmations, `elapsedMs` after it started:
 *   timeout = max(min, max − (max − min) · log(C + 1) / log(k + 1)) − elapsed
 * With k < 1 there is nothing to wait for and the timeout is `minMs`.
 */
export function remainingSuspicionMs(
  confirmations: number,
  expected: number,
  elapsedMs: number,
  minMs: number,
  maxMs: number,
): number {
  let timeout: number;
  if (expected < 1) {
    timeout = minMs;
  } else {
    const frac = Math.log(confirmations + 1) / Math.log(expected + 1);
    timeout = Math.floor(maxMs - frac * (maxMs - minMs));
    if (timeout < minMs) timeout = minMs;
  }
  return timeout - elapsedMs;
}

/** One member's suspicion: who confirmed it, and when it expires. */
export class Suspicion {
  readonly startedAtMs: number;
  readonly expected: number;
  readonly minMs: number;
  readonly maxMs: number;
  private readonly confirmedBy = new Set<string>();
  /** Absolute time at which the suspected member is declared dead. */
  deadlineMs: number;

  /** `from` is the first accuser; it does not count as a confirmation. */
  constructor(from: string, expected: number, minMs: number, maxMs: number, nowMs: number) {
    this.startedAtMs = nowMs;
    this.expected = expected;
    this.minMs = minMs;
    this.maxMs = maxMs;
    this.confirmedBy.add(from);
    this.deadlineMs = nowMs + remainingSuspicionMs(0, expected, 0, minMs, maxMs);
  }

  get confirmations(): number {
    return this.confirmedBy.size - 1;
  }

  /**
   * Record an independent confirmation from `from`. Returns true when it is new
   * (and so worth re-gossiping); the deadline then moves earlier.
   */
  confirm(from: string): boolean {
    if (this.confirmations >= this.expected) return false;
    if (this.confirmedBy.has(from)) return false;
    this.confirmedBy.add(from);
    this.deadlineMs =
      this.startedAtMs + remainingSuspicionMs(this.confirmations, this.expected, 0, this.minMs, this.maxMs);
    return true;
  }
}
