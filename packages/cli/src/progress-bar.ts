import type { Output } from './io.ts';

const BAR_WIDTH_MAX = 40;
/** Redraw at most this often: a repair of many ranges sends many lines. */
const REDRAW_INTERVAL_MS = 100;

/**
 * One line redrawn in place with `\r` on a terminal. `nowMs` is passed in so
 * tests can draw without a clock.
 */
export class ProgressBar {
  readonly #out: Output;
  readonly #label: string;
  readonly #startedMs: number;
  #lastDrawMs = -Infinity;
  #drawn = false;

  constructor(out: Output, label: string, startedMs: number) {
    this.#out = out;
    this.#label = label;
    this.#startedMs = startedMs;
  }

  update(done: number, total: number, nowMs: number): void {
    if (nowMs - this.#lastDrawMs < REDRAW_INTERVAL_MS && done < total) return;
    this.#lastDrawMs = nowMs;
    this.#out.write(`\r${renderBar(this.#label, done, total, nowMs - this.#startedMs, this.#out.columns ?? 80)}\x1b[K`);
    this.#drawn = true;
  }

  /** Erases the bar so the summary starts on a clean line. */
  clear(): void {
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#drawn = false;
  }
}

export function renderBar(label: string, done: number, total: number, elapsedMs: number, columns: number): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const tail = ` ${done}/${total} ${(elapsedMs / 1000).toFixed(1)}s`;
  const width = Math.max(10, Math.min(BAR_WIDTH_MAX, columns - label.length - tail.length - 4));
  const filled = Math.round(fraction * width);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${tail}`;
}
