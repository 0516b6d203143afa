/** A node's app over a real store on memory-level, for route and fuzz tests. */
import { openStore, type LevelLike, type Store } from '@hearsay/storage';
import { MemoryLevel } from 'memory-level';
import { createApp, type AppOptions, type HearsayApp } from '../src/app.ts';
import { createLocalService, type KvService } from '@hearsay/service';

export interface LocalNode {
  readonly app: HearsayApp;
  readonly store: Store;
  readonly service: KvService;
  close(): Promise<void>;
}

export async function openLocalNode(options: Omit<AppOptions, 'service'> = {}): Promise<LocalNode> {
  const db = new MemoryLevel();
  const store = await openStore({ db: db as unknown as LevelLike, nodeId: 'node-1', bucketBits: 4 });
  const service = createLocalService(store, { httpUrl: 'http://127.0.0.1:7000' });
  const app = createApp({ ...options, service });
  return {
    app,
    store,
    service,
    async close() {
      await store.close();
      await db.close();
    },
  };
}
