// Lifeguard local health awareness (memberlist awareness.go). A node that
// misses acks and nacks probably struggles itself (overloaded, stalled, lossy
// link), so it slows its own probing and lengthens its timeouts instead of
// accusing others.

export class Awareness {
  private scoreValue = 0;

  /** Scores run 0 .. max − 1; a score of s multiplies timeouts by s + 1. */
  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError('awareness max must be >= 1');
  }

  get score(): number {
    return this.scoreValue;
  }

  /** Failed probes without nacks add, successful probes subtract. Clamped to [0, max − 1]. */
  applyDelta(delta: number): void {
    const next = this.scoreValue + delta;
    this.scoreValue = next < 0 ? 0 : next > this.max - 1 ? this.max - 1 : next;
  }

  scaleTimeout(timeoutMs: number): number {
    return timeoutMs * (this.scoreValue + 1);
  }
}
