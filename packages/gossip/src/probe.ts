// Randomized round-robin probe order (SWIM §4.3, memberlist state.go): every
// member is probed once per pass, in a fresh random order each pass, so the
// time to first probe of a failed member is bounded by one pass.

export class ProbeOrder {
  private order: string[] = [];
  private index = 0;

  constructor(private readonly random: () => number) {}

  /**
   * The next member to probe, or undefined when none qualifies. `ids` builds
   * a new pass; `eligible` filters members that died or left mid-pass.
   */
  next(ids: () => string[], eligible: (id: string) => boolean): string | undefined {
    for (let attempts = 0; attempts < 2; attempts++) {
      while (this.index < this.order.length) {
        const id = this.order[this.index++]!;
        if (eligible(id)) return id;
      }
      this.order = shuffle(ids(), this.random);
      this.index = 0;
    }
    return undefined;
  }

  /** A new member joins the current pass at a random position after the cursor. */
  insert(id: string): void {
    const span = this.order.length - this.index;
    const at = this.index + Math.floor(this.random() * (span + 1));
    this.order.splice(at, 0, id);
  }
}

export function shuffle<T>(arr: T[], random: () => number): T[] {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = arr[i]!;
    arr[i] = arr[j]!;
    arr[j] = t;
  }
  return arr;
}

/** Up to `k` distinct random picks from `arr` satisfying `accept`, without copying `arr`. */
export function pickRandom<T>(arr: readonly T[], k: number, random: () => number, accept: (x: T) => boolean): T[] {
  const out: T[] = [];
  const n = arr.length;
  if (n === 0 || k <= 0) return out;
  // Few picks from a large array: random probes with a bounded number of tries;
  // then a full scan from a random offset so none is missed in small arrays.
  const tries = Math.min(3 * k + 8, n);
  for (let t = 0; t < tries && out.length < k; t++) {
    const x = arr[Math.floor(random() * n)]!;
    if (accept(x) && !out.includes(x)) out.push(x);
  }
  if (out.length < k) {
    const start = Math.floor(random() * n);
    for (let i = 0; i < n && out.length < k; i++) {
      const x = arr[(start + i) % n]!;
      if (accept(x) && !out.includes(x)) out.push(x);
    }
  }
  return out;
}
