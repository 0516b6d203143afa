import { MemoryLevel } from 'memory-level';
import { openStore, type LevelLike } from '@hearsay/storage';
import { createLocalService } from '../src/index.ts';
const store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'bench' });
const svc = createLocalService(store);
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
await time('service.put0', (i) => svc.put(`key${i}`, body, { consistency: 'quorum' }));
await time('store.put', (i) => store.put(`key${i}`, body));
await time('service.put', (i) => svc.put(`key${i}`, body, { consistency: 'quorum' }));
await time('store.get', (i) => store.get(`key${i}`));
await time('service.get', (i) => svc.get(`key${i}`, { consistency: 'quorum' }));
