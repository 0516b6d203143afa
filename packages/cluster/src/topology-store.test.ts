import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EMPTY_RING, ringHash, withEntry } from './ring.ts';
import { decodeTopologyState, encodeTopologyState, fileTopologyPersistence, type TopologyState } from './topology-store.ts';

const ring = withEntry(withEntry(EMPTY_RING, { id: 'n1', status: 'normal', version: 1, by: 'n1', instance: 'a', gossip: '10.0.0.1:7946' }), {
  id: 'n2',
  status: 'joining',
  version: 2,
  by: 'n2',
  instance: 'b',
  gossip: '',
});
const state: TopologyState = { instance: 'a', ring, transfer: { change: 'join:n2@2', epoch: 'e', done: [1, 5, 9] }, replace: { done: [] } };

describe('topology state', () => {
  it('round-trips through its text', () => {
    const back = decodeTopologyState(encodeTopologyState(state));
    expect(back.instance).toBe('a');
    expect(ringHash(back.ring)).toBe(ringHash(ring));
    expect(back.transfer).toEqual(state.transfer);
    expect(back.replace).toEqual({ done: [] });
  });

  it.each([
    { text: '{}', why: 'no format' },
    { text: '{"format":2,"instance":"a","ring":[]}', why: 'another format' },
    { text: '{"format":1,"ring":[]}', why: 'no instance' },
    { text: '{"format":1,"instance":"a","ring":[{"id":"n1"}]}', why: 'a malformed entry' },
    { text: '{"format":1,"instance":"a","ring":[],"transfer":{"change":"x","epoch":"e","done":[-1]}}', why: 'a negative partition' },
    { text: 'not json', why: 'not JSON' },
  ])('refuses $why', ({ text }) => {
    expect(() => decodeTopologyState(text)).toThrow();
  });

  it('a file: missing is undefined, saved is loaded, a corrupt one is BAD_CONFIG naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'topology-store-'));
    try {
      const path = join(dir, 'sub', 'ring.json');
      const p = fileTopologyPersistence(path);
      expect(await p.load()).toBeUndefined();
      await p.save(state);
      expect(ringHash((await p.load())!.ring)).toBe(ringHash(ring));
      expect(JSON.parse(await readFile(path, 'utf8')).format).toBe(1);
      await writeFile(path, '{"format":1');
      await expect(p.load()).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringContaining(path) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
