import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { openStore } from '../src/index.ts';
import type { LevelLike } from '../src/index.ts';
import { runStoreConformance } from './conformance.ts';

runStoreConformance({
  name: 'classic-level directory (location)',
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'hearsay-storage-'));
    return {
      open: (settings = {}) => openStore({ ...settings, location: dir }),
      destroy: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

runStoreConformance({
  name: 'memory-level',
  async create() {
    const db = new MemoryLevel();
    return { open: (settings = {}) => openStore({ ...settings, db }), destroy: () => db.close() };
  },
});

runStoreConformance({
  name: 'memory-level with async reads (syncReads: false)',
  async create() {
    const db = new MemoryLevel();
    return { open: (settings = {}) => openStore({ ...settings, db, syncReads: false }), destroy: () => db.close() };
  },
});

runStoreConformance({
  name: 'sublevel of a classic-level database beside other data',
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'hearsay-storage-'));
    const root = new ClassicLevel<string, string>(dir);
    await root.put('hints!x', 'unrelated data in the same LevelDB');
    const db = root.sublevel('kv') as unknown as LevelLike;
    return {
      open: (settings = {}) => openStore({ ...settings, db }),
      async destroy() {
        await root.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
