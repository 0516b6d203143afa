import { MemoryLevel } from 'memory-level';
import { openStore, type LevelLike } from '@hearsay/storage';
import { createApp, createLocalService } from '../src/index.ts';
const store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'bench' });
await store.batch(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: `key${i}`, value: new Uint8Array(100).fill(120) })));
const app = createApp({ service: createLocalService(store) });
const reqs = Array.from({ length: 100 }, (_, i) => new Request(`http://x/v1/kv/key${i}`));
for (let i = 0; i < 1_000_000; i++) await app.fetch(reqs[i % 100]!);
