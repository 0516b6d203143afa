// Clock offsets of peers, measured NTP-style from the probes SWIM sends anyway
// (CockroachDB's RemoteClockMonitor does the same with its heartbeats).
//
// A probe leaves at our wall time t0; the target stamps its wall time t1 on
// the Ack; the Ack is handled at our wall time t2. The target read its clock
// somewhere inside [t0, t2] of ours, so its offset (its clock minus ours) lies
// in [t1 − t2, t1 − t0]:
//
//   offset = t1 − (t0 + t2) / 2,   error = (t2 − t0) / 2 + 1 ms
//
// (the 1 ms covers millisecond clock readings). A sample ages: two clocks
// drift apart by up to `driftPpmMax` (a tuning bound), so a sample taken
// `age` ago bounds the offset now within error + age · driftPpmMax / 10^6.
// Each member keeps a few recent samples; the estimate is the one with the
// smallest bound now, which prefers low-RTT samples and lets fresh ones win
// as old ones age. A new sample that contradicts an older one (their bounds do
// not overlap: the peer's clock was stepped, or drifts faster than the bound)
// retires the older one, so a step is followed at the next sample.

/** One member's clock offset as seen here. Positive: that member's clock is ahead of ours. */
export interface ClockOffset {
  /** Its wall clock minus ours, in ms. */
  offsetMs: number;
  /** The true offset now lies within offsetMs ± errorMs (given relative drift within the tuning bound). */
  errorMs: number;
  /** When the sample behind the estimate was taken, on the core's `nowMs` time base. */
  measuredAtMs: number;
}

export interface ClockSample {
  offsetMs: number;
  /** Bound at the time of measurement: half the round trip plus the reading resolution. */
  errorMs: number;
  atMs: number;
}

/** Resolution of a wall-clock reading (Date.now() is in whole milliseconds). */
export const CLOCK_READING_RESOLUTION_MS = 1;

/** The sample from one probe round trip, or undefined when the readings are inconsistent (our clock stepped back). */
export function clockSample(sentWallMs: number, remoteWallMs: number, receivedWallMs: number, nowMs: number): ClockSample | undefined {
  const rttMs = receivedWallMs - sentWallMs;
  if (!(rttMs >= 0) || !Number.isFinite(remoteWallMs)) return undefined;
  return {
    offsetMs: remoteWallMs - (sentWallMs + receivedWallMs) / 2,
    errorMs: rttMs / 2 + CLOCK_READING_RESOLUTION_MS,
    atMs: nowMs,
  };
}

/** The bound of `s` at `nowMs`, widened by the drift allowed since it was taken. */
export function errorAt(s: ClockSample, nowMs: number, driftPpmMax: number): number {
  return s.errorMs + Math.max(0, nowMs - s.atMs) * driftPpmMax * 1e-6;
}

/** A small window of one member's samples. */
export class ClockWindow {
  private samples: ClockSample[] = [];

  constructor(
    private readonly max: number,
    private readonly driftPpmMax: number,
  ) {}

  get size(): number {
    return this.samples.length;
  }

  /** Add a sample; older samples it contradicts are retired, and the oldest beyond the bound. Returns how many were retired as contradicted. */
  add(sample: ClockSample): number {
    const before = this.samples.length;
    this.samples = this.samples.filter((s) => Math.abs(s.offsetMs - sample.offsetMs) <= errorAt(s, sample.atMs, this.driftPpmMax) + sample.errorMs);
    const contradicted = before - this.samples.length;
    this.samples.push(sample);
    if (this.samples.length > this.max) this.samples.shift();
    return contradicted;
  }

  /** The estimate with the smallest bound at `nowMs`, or undefined without samples. */
  estimate(nowMs: number): ClockOffset | undefined {
    let best: ClockSample | undefined;
    let bestError = Infinity;
    for (const s of this.samples) {
      const e = errorAt(s, nowMs, this.driftPpmMax);
      if (e < bestError) {
        best = s;
        bestError = e;
      }
    }
    return best === undefined ? undefined : { offsetMs: best.offsetMs, errorMs: bestError, measuredAtMs: best.atMs };
  }
}
