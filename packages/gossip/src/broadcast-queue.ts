// Transmit-limited rumor queue (memberlist queue.go). Each rumor is sent at
// most `limit` times, where limit = retransmitMult · ceil(log10(N + 1)) — the
// λ·log(N) of epidemic dissemination. Rumors sent fewest times go first, newer
// before older among equals. A newer rumor about the same subject (same key)
// replaces the queued one, so stale liveness facts never travel.

import type { PacketMessage } from './messages.ts';
import { estimateSize, MESSAGE_OVERHEAD_BYTES } from './size.ts';

/** memberlist's retransmitLimit. */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.ceil(Math.log10(n + 1));
}

interface Item {
  key: string;
  msg: PacketMessage;
  bytes: number;
  transmits: number;
  /** This rumor is sent `limitMult` times the queue's limit (join announcements travel further). */
  limitMult: number;
  seq: number;
}

export class BroadcastQueue {
  private readonly items = new Map<string, Item>();
  private seq = 0;
  /** Rumors dropped because the queue was full. */
  dropped = 0;

  constructor(readonly maxItems: number) {}

  get size(): number {
    return this.items.size;
  }

  /** Queue `msg` under `key`, replacing a queued rumor with the same key; it is sent `limitMult` × the limit. */
  push(key: string, msg: PacketMessage, limitMult = 1): void {
    this.items.delete(key);
    this.items.set(key, { key, msg, bytes: estimateSize(msg) + MESSAGE_OVERHEAD_BYTES, transmits: 0, limitMult, seq: this.seq++ });
    if (this.items.size > this.maxItems) this.evict();
  }

  /** The queued message under `key`, if any. */
  peek(key: string): PacketMessage | undefined {
    return this.items.get(key)?.msg;
  }

  delete(key: string): void {
    this.items.delete(key);
  }

  clear(): void {
    this.items.clear();
  }

  /**
   * Take rumors that fit in `budgetBytes`, fewest-sent first. Each taken rumor
   * counts one transmit and leaves the queue once sent `limit` times.
   */
  take(budgetBytes: number, limit: number, out: PacketMessage[] = []): PacketMessage[] {
    if (this.items.size === 0 || budgetBytes <= 0) return out;
    const sorted = [...this.items.values()].sort((a, b) => a.transmits - b.transmits || b.seq - a.seq);
    let left = budgetBytes;
    for (const it of sorted) {
      if (left < MESSAGE_OVERHEAD_BYTES + 8) break;
      if (it.bytes > left) continue;
      left -= it.bytes;
      out.push(it.msg);
      it.transmits++;
      if (it.transmits >= limit * it.limitMult) this.items.delete(it.key);
    }
    return out;
  }

  /** Drop the most-sent (then oldest) rumors until under the bound. */
  private evict(): void {
    const sorted = [...this.items.values()].sort((a, b) => b.transmits - a.transmits || a.seq - b.seq);
    for (const it of sorted) {
      if (this.items.size <= this.maxItems) break;
      this.items.delete(it.key);
      this.dropped++;
    }
  }
}
