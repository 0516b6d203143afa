// Phi-accrual failure detector (Hayashibara et al.; Cassandra's
// FailureDetector/ArrivalWindow). Heartbeat inter-arrival times are assumed
// exponentially distributed, so phi = Δt / mean · log10(e): phi 8 means a
// silence about 18.4 mean intervals long.

const PHI_FACTOR = 1 / Math.LN10;

export class ArrivalWindow {
  private readonly intervals: number[] = [];
  private next = 0;
  private sum = 0;
  private lastMs: number | undefined;

  /** `minMeanMs` floors the mean so a burst of quick arrivals does not make phi jumpy. */
  constructor(
    readonly size: number,
    readonly minMeanMs: number,
  ) {}

  /** Record a heartbeat arrival at `nowMs`. */
  add(nowMs: number): void {
    if (this.lastMs !== undefined) {
      const interval = Math.max(0, nowMs - this.lastMs);
      if (this.intervals.length < this.size) {
        this.intervals.push(interval);
      } else {
        this.sum -= this.intervals[this.next] ?? 0;
        this.intervals[this.next] = interval;
        this.next = (this.next + 1) % this.size;
      }
      this.sum += interval;
    }
    this.lastMs = nowMs;
  }

  get meanMs(): number {
    const n = this.intervals.length;
    return Math.max(this.minMeanMs, n === 0 ? this.minMeanMs : this.sum / n);
  }

  get lastArrivalMs(): number | undefined {
    return this.lastMs;
  }

  /** Suspicion level at `nowMs` (0 before the first arrival). */
  phi(nowMs: number): number {
    if (this.lastMs === undefined) return 0;
    return (PHI_FACTOR * Math.max(0, nowMs - this.lastMs)) / this.meanMs;
  }
}
