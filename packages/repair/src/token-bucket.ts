/**
 * A byte-rate limiter that takes time as input (pure: no clock, no timers).
 * The session takes every message's size from it and waits as long as it
 * says before sending the next request, so the average rate stays at or
 * below `bytesPerSec` with bursts up to `burstBytes`.
 *
 * Taking may go into debt (a reply's size is only known after it arrived);
 * the debt is paid by waiting before the next send.
 */
export class TokenBucket {
  private readonly bytesPerSec: number;
  private readonly burstBytes: number;
  private tokens: number;
  private lastMs: number;

  constructor(bytesPerSec: number, burstBytes: number, nowMs: number) {
    if (!(bytesPerSec > 0) || !Number.isFinite(bytesPerSec)) throw new RangeError('bytesPerSec must be a positive number');
    if (!(burstBytes > 0) || !Number.isFinite(burstBytes)) throw new RangeError('burstBytes must be a positive number');
    this.bytesPerSec = bytesPerSec;
    this.burstBytes = burstBytes;
    this.tokens = burstBytes;
    this.lastMs = nowMs;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(this.burstBytes, this.tokens + ((nowMs - this.lastMs) * this.bytesPerSec) / 1000);
      this.lastMs = nowMs;
    }
  }

  /** Takes `bytes` and returns how many ms to wait before sending more (0 when within budget). */
  take(bytes: number, nowMs: number): number {
    this.refill(nowMs);
    this.tokens -= bytes;
    return this.waitMs(nowMs);
  }

  /** How many ms until the bucket is out of debt. */
  waitMs(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSec);
  }
}
