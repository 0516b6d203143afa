/**
 * The pipelined commit queue: a group prepared while the previous group's
 * batch is being written builds on what that write leaves; if the write
 * fails, the group is prepared again from what is really stored.
 */
import { MemoryLevel } from 'memory-level';
import { describe, expect, it } from 'vitest';
import { openStore, type LevelLike } from '../src/index.ts';
import { checkIntegrity } from './integrity.ts';

interface Gate {
  /** Resolves when the held write has been called. */
  readonly held: Promise<void>;
  /** Ends the held write: with an error, or by writing it. */
  release(error?: Error): void;
}

/**
 * A memory-level database whose next write batch (array or chained) is held
 * until released; every other call passes through.
 */
function gatedDb(): { db: LevelLike; raw: MemoryLevel<Buffer, Buffer>; gate(): Gate; writes: number[] } {
  const raw = new MemoryLevel<Buffer, Buffer>({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
  /** Entries of every batch written, in order of the write calls. */
  const writes: number[] = [];
  let pending: { onCalled: () => void; wait: Promise<Error | undefined> } | null = null;
  const hold = async (write: () => Promise<void>): Promise<void> => {
    const p = pending;
    if (p === null) return write();
    pending = null;
    p.onCalled();
    const error = await p.wait;
    if (error !== undefined) throw error;
    return write();
  };
  const db = new Proxy(raw, {
    get(target, prop, receiver) {
      if (prop === 'batch') {
        return (ops?: unknown, options?: unknown) => {
          if (ops !== undefined) {
            writes.push((ops as unknown[]).length);
            return hold(() => target.batch(ops as never, options as never));
          }
          const chained = target.batch();
          return new Proxy(chained, {
            get(t, p, r) {
              if (p === 'write') {
                return (o?: unknown) => {
                  writes.push(t.length);
                  return hold(() => t.write(o as never));
                };
              }
              const v = Reflect.get(t, p, r) as unknown;
              return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
            },
          });
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as unknown as LevelLike;
  const gate = (): Gate => {
    let onCalled!: () => void;
    let finish!: (e: Error | undefined) => void;
    const held = new Promise<void>((resolve) => { onCalled = resolve; });
    const wait = new Promise<Error | undefined>((resolve) => { finish = resolve; });
    pending = { onCalled, wait };
    return { held, release: (error) => finish(error) };
  };
  return { db, raw, gate, writes };
}

/** Lets queued promise jobs run (no timers: the store's queue is promise-driven). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('pipelined commit queue', () => {
  // Journal budgets: the default, a checkpoint in every batch, and a checkpoint every few batches.
  it.each([undefined, 0, 50])('prepares the next group on top of the write in flight (digestJournalBytes %s)', async (journalBytes) => {
    const { db, raw, gate } = gatedDb();
    const store = await openStore({ db, bucketBits: 4, nodeId: 'p', ...(journalBytes === undefined ? {} : { digestJournalBytes: journalBytes }) });
    await store.put('stays', 'x');
    const g = gate();
    const first = Promise.all([store.put('a', '1'), store.put('b', '1'), store.delete('stays')]);
    await g.held;
    // Arrives while the first batch is held: overwrites a, deletes b, re-creates stays.
    const second = Promise.all([store.put('a', '2'), store.delete('b'), store.put('stays', 'again'), store.put('c', '1')]);
    await settle();
    g.release();
    const [[a1], [a2, b2, s2]] = await Promise.all([first, second]);
    expect((await store.get('a'))?.value).toEqual(new TextEncoder().encode('2'));
    expect(await store.get('b')).toBeUndefined();
    expect((await store.get('stays'))?.value).toEqual(new TextEncoder().encode('again'));
    expect(a2!.version).not.toEqual(a1!.version);
    expect(b2!.tombstone).toBe(true);
    expect(s2!.tombstone).toBe(false);
    expect(store.stats()).toEqual({ keys: 3, tombstones: 1, bucketBits: 4 });
    expect(await checkIntegrity(store)).toEqual([]);
    const digests = await store.bucketDigests(0, 16);
    await store.close();
    const reopened = await openStore({ db: raw as unknown as LevelLike });
    expect(await reopened.bucketDigests(0, 16)).toEqual(digests);
    expect(reopened.stats()).toEqual({ keys: 3, tombstones: 1, bucketBits: 4 });
    expect(await checkIntegrity(reopened)).toEqual([]);
    await reopened.close();
  });

  it.each([
    [20, 2],
    [15, 1],
  ])('%i puts queued with nothing in flight go out as %i batch(es): a long queue in two halves, the second prepared while the first is written', async (count, batches) => {
    const { db, raw, gate, writes } = gatedDb();
    const store = await openStore({ db, bucketBits: 4, nodeId: 'p' });
    await store.put('warm', 'x');
    const before = writes.length;
    const g = gate();
    const puts = Array.from({ length: count }, (_, i) => store.put(`k${i}`, String(i)));
    await g.held;
    await settle();
    // While the first half is held, the second is already prepared: its batch waits only for the first write.
    expect(writes.length - before).toBe(1);
    g.release();
    await Promise.all(puts);
    const sizes = writes.slice(before);
    expect(sizes).toHaveLength(batches);
    // Each put writes its record and its index entry; each batch adds its digest journal entry.
    if (batches === 2) expect(Math.abs(sizes[0]! - sizes[1]!)).toBeLessThanOrEqual(1);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2 * count + batches);
    expect(store.stats()).toMatchObject({ keys: count + 1, tombstones: 0 });
    expect(await checkIntegrity(store)).toEqual([]);
    const digests = await store.bucketDigests(0, 16);
    await store.close();
    const reopened = await openStore({ db: raw as unknown as LevelLike });
    expect(await reopened.bucketDigests(0, 16)).toEqual(digests);
    await reopened.close();
  });

  it('fails only the group whose write failed, and prepares the next one again from what is stored', async () => {
    const { db, gate } = gatedDb();
    const store = await openStore({ db, bucketBits: 4, nodeId: 'p' });
    await store.put('a', '0');
    const g = gate();
    const first = store.put('a', '1');
    const firstOutcome = first.then(() => 'written', (e: unknown) => e);
    await g.held;
    const second = Promise.all([store.put('b', '2'), store.put('a', '2')]);
    await settle();
    g.release(new Error('disk on fire'));
    expect(await firstOutcome).toMatchObject({ message: 'disk on fire' });
    await second;
    expect((await store.get('a'))?.value).toEqual(new TextEncoder().encode('2'));
    expect((await store.get('b'))?.value).toEqual(new TextEncoder().encode('2'));
    expect(store.stats()).toEqual({ keys: 2, tombstones: 0, bucketBits: 4 });
    expect(await checkIntegrity(store)).toEqual([]);
    await store.close();
  });
});
