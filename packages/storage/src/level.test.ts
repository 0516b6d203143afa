import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { describe, expect, it } from 'vitest';
import { BINARY, implementorBatches, writeImplementorBatch, type LevelLike } from './level.ts';

describe('implementorBatches', () => {
  it('writes through classic-level only when the store opened the database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearsay-level-'));
    const db = new Level<Buffer, Buffer>(dir, BINARY);
    try {
      await db.open();
      const like = db as unknown as LevelLike;
      expect(implementorBatches(like, false)).toBeNull();
      const direct = implementorBatches(like, true);
      expect(direct).not.toBeNull();
      // A batch written this way is one atomic LevelDB batch, readable through the public API.
      const batch = direct!._chainedBatch();
      batch._put(Buffer.from('a'), Buffer.from('1'));
      batch._put(Buffer.from('b'), Buffer.from('2'));
      batch._del(Buffer.from('a'));
      await batch._write({});
      expect(await db.get(Buffer.from('a'))).toBeUndefined();
      expect(await db.get(Buffer.from('b'))).toEqual(Buffer.from('2'));
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lets go of every batch it wrote: the database tracks none of them afterwards', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearsay-level-'));
    const db = new Level<Buffer, Buffer>(dir, BINARY);
    try {
      await db.open();
      // abstract-level keeps its resources in a private set: count what goes in and out of it.
      const tracked = new Set<object>();
      const attach = db.attachResource.bind(db);
      const detach = db.detachResource.bind(db);
      db.attachResource = (resource) => {
        tracked.add(resource);
        attach(resource);
      };
      db.detachResource = (resource) => {
        tracked.delete(resource);
        detach(resource);
      };
      const direct = implementorBatches(db as unknown as LevelLike, true)!;
      for (let i = 0; i < 20; i++) {
        await writeImplementorBatch(direct, [{ type: 'put', key: Buffer.from(`k${i}`), value: Buffer.from('v') }], {});
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(tracked.size).toBe(0);
      expect(await db.get(Buffer.from('k19'))).toEqual(Buffer.from('v'));
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is null for a database without the implementor interface', () => {
    const publicOnly = { status: 'open', batch: () => Promise.resolve() } as unknown as LevelLike;
    expect(implementorBatches(publicOnly, true)).toBeNull();
    expect(implementorBatches(new MemoryLevel() as unknown as LevelLike, false)).toBeNull();
  });
});
