import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileGenerationStore, memoryGenerationStore, nextGeneration } from './generation-store.ts';

describe('generation persistence', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it.each([
    ['first start takes the boot time', undefined, 1_700_000_000_000, 1_700_000_000_000],
    ['a restart goes above the stored generation', 1_700_000_000_000, 1_600_000_000_000, 1_700_000_000_001],
    ['a restart after time passed takes the boot time', 5, 1_700_000_000_000, 1_700_000_000_000],
    ['a clock at zero still rises', 41, 0, 42],
  ])('nextGeneration: %s', (_name, stored, nowMs, expected) => {
    expect(nextGeneration(stored, nowMs)).toBe(expected);
  });

  it('a file store starts empty, keeps what was saved across instances, and rejects a corrupt file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearsay-gen-'));
    dirs.push(dir);
    const path = join(dir, 'nested', 'gossip.json');
    expect(await fileGenerationStore(path).load()).toBeUndefined();
    await fileGenerationStore(path).save(1234);
    expect(await fileGenerationStore(path).load()).toBe(1234);
    await writeFile(path, 'not json');
    await expect(fileGenerationStore(path).load()).rejects.toMatchObject({ code: 'GENERATION_STORE_CORRUPT' });
  });

  it('a memory store holds the value', async () => {
    const store = memoryGenerationStore(3);
    expect(await store.load()).toBe(3);
    await store.save(4);
    expect(store.value).toBe(4);
  });
});
