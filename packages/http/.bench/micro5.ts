import { MemoryLevel } from 'memory-level';
import { openStore, type LevelLike } from '@hearsay/storage';
const store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'bench' });
const body = new Uint8Array(100).fill(1);
const N = 50000;
async function time(name: string, f: (i: number) => Promise<unknown>) {
  let best = Infinity;
  for (let r = 0; r < 4; r++) {
    const t = performance.now(); let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => { while (next < N) await f(next++ % 10000); }));
    best = Math.min(best, ((performance.now() - t) * 1000) / N);
  }
  console.log(name.padEnd(20), best.toFixed(2), 'us/op');
}
const tails = new Map<string, Promise<unknown>>();
function serialize<T>(key: string, run: () => Promise<T>): Promise<T> {
  const previous = tails.get(key);
  const result = previous === undefined ? run() : previous.then(run, run);
  const tail = result.then(() => undefined, () => undefined);
  tails.set(key, tail);
  void tail.then(() => { if (tails.get(key) === tail) tails.delete(key); });
  return result;
}
await time('store.put', (i) => store.put(`key${i}`, body));
await time('async wrap', async (i) => { try { return await store.put(`key${i}`, body); } catch (e) { throw e; } });
await time('serialize', (i) => serialize(`key${i}`, () => store.put(`key${i}`, body)));
await time('store.put', (i) => store.put(`key${i}`, body));
