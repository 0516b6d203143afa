import { MemoryLevel } from 'memory-level';
import { openStore } from '@hearsay/storage';
import type { Store, StoredRecord } from '@hearsay/storage';
import type { Clock } from '@hearsay/clock';

export async function openMemoryStore(nodeId: string, bucketBits: number, now?: () => number): Promise<Store> {
  const db = new MemoryLevel();
  return openStore({ db: db as never, nodeId, bucketBits, ...(now === undefined ? {} : { clock: { now } }) });
}

/** Every stored record (tombstones included), sorted by key, as comparable plain data. */
export async function dump(store: Store): Promise<unknown[]> {
  const out: unknown[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.scan({ includeTombstones: true, limit: 10_000, ...(cursor === null ? {} : { cursor }) });
    for (const r of page.records) out.push(plain(r));
    cursor = page.next;
  } while (cursor !== null);
  return out;
}

export function plain(r: StoredRecord): unknown {
  return {
    key: r.key,
    value: Buffer.from(r.value).toString('hex'),
    version: `${r.version.ms}.${r.version.counter}.${r.version.node}`,
    tombstone: r.tombstone,
    contentType: r.contentType ?? null,
    expiresAtMs: r.expiresAtMs ?? null,
  };
}

/**
 * A clock that only moves when a timer is set: a timer jumps the clock by its
 * delay and fires on the next microtask. Sessions under test never wait on
 * real time; `slept` adds up the delays.
 */
export function virtualClock(startMs = 0): Clock & { slept: number } {
  let now = startMs;
  const clock = {
    slept: 0,
    now: () => now,
    setTimer(callback: () => void, delayMs: number) {
      const ms = Math.max(0, delayMs);
      now += ms;
      clock.slept += ms;
      let cancelled = false;
      queueMicrotask(() => {
        if (!cancelled) callback();
      });
      return () => {
        cancelled = true;
      };
    },
  };
  return clock;
}

/** A deterministic salt from a seed (the core takes randomness as input). */
export function seededSalt(seed: number): Uint8Array {
  const salt = Buffer.alloc(8);
  salt.writeUInt32BE(seed >>> 0, 0);
  salt.writeUInt32BE(Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) >>> 0, 4);
  return salt;
}

