// Seeded pseudo-random numbers: sfc32 (Chris Doty-Humphrey's Small Fast
// Counter), seeded from one 32-bit integer through splitmix32. Fast, passes
// PractRand to large sizes, and one seed gives one sequence on every platform.

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is taken as an unsigned 32-bit integer. */
  constructor(readonly seed: number) {
    const sm = splitmix32(seed);
    this.a = sm();
    this.b = sm();
    this.c = sm();
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Uniform unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). An arrow property, so `random.next` can be passed as a `() => number`. */
  readonly next = (): number => this.nextUint32() / 4294967296;

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new RangeError('pick from an empty array');
    return arr[this.int(arr.length)]!;
  }

  /** Fisher–Yates in place; returns `arr`. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
    return arr;
  }

  /** An independent stream derived from this one (advances this stream once). */
  fork(): Random {
    return new Random(this.nextUint32());
  }
}

/** A seeded random source. Same seed, same sequence. */
export function createRandom(seed: number): Random {
  return new Random(seed >>> 0);
}

/** A fresh seed for a run that will print it: from SIM_SEED when set, else from the clock. */
export function seedFromEnv(env: Record<string, string | undefined> = process.env): number {
  const s = env['SIM_SEED'];
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (Number.isInteger(n)) return n >>> 0;
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
