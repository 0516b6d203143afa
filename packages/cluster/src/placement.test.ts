import { describe, expect, it } from 'vitest';
import { createRandom } from '@hearsay/sim';
import { changeOrder, covered, derivePlacement, gateMissing, type Placement } from './placement.ts';
import { EMPTY_RING, nextEntry, withEntry, type Ring, type RingStatus } from './ring.ts';

const OPTIONS = { partitionBits: 8, replicationFactor: 3 };
const entry = (id: string, status: RingStatus, version: number, by = id) => ({ id, status, version, by, instance: `i-${id}`, gossip: '' });
const ringOf = (spec: Readonly<Record<string, readonly [RingStatus, number]>>): Ring =>
  Object.entries(spec).reduce<Ring>((r, [id, [status, version]]) => withEntry(r, entry(id, status, version)), EMPTY_RING);
const place = (spec: Readonly<Record<string, readonly [RingStatus, number]>>): Placement => derivePlacement(ringOf(spec), OPTIONS);

describe('derivePlacement', () => {
  it('with no change every partition has one set: its three owners', () => {
    const p = place({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3] });
    expect(p.change).toBeUndefined();
    expect(p.owners).toEqual(['a', 'b', 'c']);
    expect(p.targets).toEqual(p.owners);
    expect(p.next).toBe(p.current);
    expect(p.transfers()).toEqual([]);
    expect(p.gateMembers).toEqual(['a', 'b', 'c']);
    for (let part = 0; part < p.partitionCount; part++) {
      expect(p.sets(part).moving).toBe(false);
      expect([...p.sets(part).old].sort()).toEqual(['a', 'b', 'c']);
    }
    expect(p.sets(0).old).toHaveLength(3);
    expect(p.sets(0).all).toBe(p.sets(0).old);
  });

  it('a join: the joiner is a target, not an owner, and gains exactly the slots it ranks in', () => {
    const p = place({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3], d: ['joining', 4] });
    expect(p.change).toEqual({ kind: 'join', subject: 'd', version: 4, key: 'join:d@4' });
    expect(p.owners).toEqual(['a', 'b', 'c']);
    expect(p.targets).toEqual(['a', 'b', 'c', 'd']);
    expect(p.gateMembers).toEqual(['a', 'b', 'c']);
    const transfers = p.transfers();
    expect(transfers.length).toBeGreaterThan(150);
    for (const t of transfers) {
      const s = p.sets(t.partition);
      expect(t.to).toBe('d');
      expect(s.moving).toBe(true);
      expect(s.next).toContain('d');
      expect(s.old).not.toContain('d');
      expect(s.all).toEqual([...s.old, 'd']);
      // The displaced member is the old replica that ranks below d; it is the first source.
      expect(t.displaced).toBeDefined();
      expect(s.next).not.toContain(t.displaced);
      expect(t.sources[0]).toBe(t.displaced);
      expect([...t.sources].sort()).toEqual([...s.old].sort());
    }
    for (let part = 0; part < p.partitionCount; part++) {
      expect(p.sets(part).moving).toBe(transfers.some((t) => t.partition === part));
    }
  });

  it('a decommission: the leaver stays an owner until it commits; its slots go to the next in each ranking', () => {
    const p = place({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3], d: ['leaving', 6] });
    expect(p.change?.kind).toBe('decommission');
    expect(p.owners).toEqual(['a', 'b', 'c', 'd']);
    expect(p.targets).toEqual(['a', 'b', 'c']);
    expect(p.gateMembers).toEqual(['a', 'b', 'c', 'd']);
    for (const t of p.transfers()) {
      expect(t.displaced).toBe('d');
      expect(t.sources[0]).toBe('d');
      expect(p.current.ranking(t.partition)[3]).toBe(t.to);
    }
    expect(p.transfers()).toHaveLength(p.current.partitionsOf('d').length);
  });

  it('a removal: the dead member is no source and not in the gate', () => {
    const p = place({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3], d: ['removing', 6] });
    expect(p.change?.kind).toBe('remove');
    expect(p.gateMembers).toEqual(['a', 'b', 'c']);
    expect(p.removing).toEqual(new Set(['d']));
    for (const t of p.transfers()) {
      expect(t.displaced).toBe('d');
      expect(t.sources).not.toContain('d');
      expect(t.sources).toHaveLength(2);
    }
  });

  it('a removal with no member left to take the slots only shrinks the sets (RF is capped)', () => {
    const p = place({ a: ['normal', 1], b: ['normal', 2], c: ['removing', 6] });
    expect(p.transfers()).toEqual([]);
    expect(p.sets(0)).toMatchObject({ moving: true, next: expect.any(Array) });
    expect(p.sets(0).next).toHaveLength(2);
  });

  it('the first node of a new cluster joins with nobody to stream from', () => {
    const p = place({ a: ['joining', 1], b: ['joining', 1] });
    expect(p.change?.subject).toBe('a');
    expect(p.owners).toEqual([]);
    expect(p.gateMembers).toEqual([]);
    expect(p.transfers()).toHaveLength(256);
    expect(p.transfers().every((t) => t.sources.length === 0 && t.old.length === 0)).toBe(true);
    expect(p.queued.map((c) => c.subject)).toEqual(['b']);
  });

  it.each([
    { why: 'the lower version runs first', spec: { a: ['normal', 1], x: ['joining', 5], y: ['joining', 4] }, order: ['y', 'x'] },
    { why: 'at one version the lower id runs first', spec: { a: ['normal', 1], x: ['joining', 4], y: ['joining', 4] }, order: ['x', 'y'] },
    { why: 'a removal goes ahead of an earlier join (a dead member blocks its gate)', spec: { a: ['normal', 1], x: ['joining', 4], d: ['removing', 9] }, order: ['d', 'x'] },
    { why: 'decommissions and joins share one queue', spec: { a: ['normal', 1], b: ['leaving', 3], x: ['joining', 4] }, order: ['b', 'x'] },
    { why: 'left and removed members are done, not queued', spec: { a: ['normal', 1], b: ['left', 3], c: ['removed', 4] }, order: [] },
  ] as const)('change order: $why', ({ spec, order }) => {
    expect(changeOrder(ringOf(spec)).map((c) => c.subject)).toEqual(order);
  });

  it('a waiting joiner is neither owner nor target; a waiting leaver stays both', () => {
    const p = place({ a: ['normal', 1], b: ['normal', 1], c: ['normal', 1], d: ['normal', 1], x: ['joining', 5], l: ['leaving', 2] });
    expect(p.change?.subject).toBe('l');
    expect(p.targets).not.toContain('x');
    expect(p.owners).toContain('l');
    const q = place({ a: ['normal', 1], b: ['normal', 1], c: ['normal', 1], d: ['normal', 1], x: ['joining', 2], l: ['leaving', 5] });
    expect(q.change?.subject).toBe('x');
    expect(q.targets).toContain('l');
  });

  it('the epoch names (owners, targets) only', () => {
    const a = place({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3] });
    const b = place({ a: ['normal', 7], b: ['normal', 2], c: ['normal', 9], z: ['left', 4] });
    const withQueue = derivePlacement(withEntry(withEntry(ringOf({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3] }), entry('x', 'joining', 8)), entry('y', 'joining', 9)), OPTIONS);
    expect(b.epoch).toBe(a.epoch);
    expect(withQueue.epoch).not.toBe(a.epoch);
    expect(place({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3], x: ['joining', 8], y: ['joining', 9], w: ['removed', 10] }).epoch).toBe(withQueue.epoch);
  });
});

describe('covered', () => {
  const old = ['a', 'b', 'd'];
  it.each([
    { t: { old, displaced: 'd', sources: ['d', 'a', 'b'] }, reached: ['d'], ok: true, why: 'a join or decommission: the displaced member alone is enough' },
    { t: { old, displaced: 'd', sources: ['d', 'a', 'b'] }, reached: ['a'], ok: false, why: 'one other old member is not: a write on d and b is missed' },
    { t: { old, displaced: 'd', sources: ['d', 'a', 'b'] }, reached: ['a', 'b'], ok: true, why: 'the displaced member down: every majority of the old set includes a or b' },
    { t: { old, displaced: 'd', sources: ['a', 'b'] }, reached: ['a'], ok: false, why: 'a removal: one survivor of three is not enough' },
    { t: { old, displaced: 'd', sources: ['a', 'b'] }, reached: ['a', 'b'], ok: true, why: 'a removal: both survivors' },
    { t: { old: ['a', 'b', 'c', 'd', 'e'], displaced: 'e', sources: ['a', 'b', 'c', 'd'] }, reached: ['a', 'b'], ok: false, why: 'RF 5, removal: two survivors leave a majority of the old set out' },
    { t: { old: ['a', 'b', 'c', 'd', 'e'], displaced: 'e', sources: ['a', 'b', 'c', 'd'] }, reached: ['a', 'b', 'c'], ok: true, why: 'RF 5, removal: three survivors' },
    { t: { old: ['a', 'b'], displaced: undefined, sources: ['a', 'b'] }, reached: ['a'], ok: true, why: 'the set only grows: any one source' },
    { t: { old: ['a', 'b'], displaced: undefined, sources: ['a', 'b'] }, reached: [], ok: false, why: 'the set only grows, but no source reached yet' },
    { t: { old: [], displaced: undefined, sources: [] }, reached: [], ok: true, why: 'nobody owned the partition: nothing was acknowledged' },
  ])('$why', ({ t, reached, ok }) => {
    expect(covered(t, new Set(reached))).toBe(ok);
  });
});

describe('gateMissing', () => {
  it('names the members that have not acknowledged the epoch', () => {
    const p = place({ a: ['normal', 1], b: ['normal', 2], c: ['normal', 3], d: ['joining', 4] });
    const acks: Record<string, string> = { a: p.epoch, b: 'older', d: p.epoch };
    expect(gateMissing(p, (id) => acks[id])).toEqual(['b', 'c']);
    expect(gateMissing(p, () => p.epoch)).toEqual([]);
  });
});

/**
 * The law the protocol rests on (docs/topology.md): a step that does not
 * commit keeps the old set of every partition, so a node that took it and
 * one that did not share a set; a commit moves to placements whose old set
 * is the new set before it.
 */
describe('consecutive placements share a replica set', () => {
  it('holds over random sequences of joins, decommissions, removals, aborts and commits (seed 21)', () => {
    const random = createRandom(21);
    const options = { partitionBits: 4, replicationFactor: 3 };
    for (let run = 0; run < 25; run++) {
      let ring: Ring = EMPTY_RING;
      for (const id of ['a', 'b', 'c', 'd']) ring = withEntry(ring, entry(id, 'normal', 1));
      let fresh = 0;
      for (let step = 0; step < 25; step++) {
        const before = derivePlacement(ring, options);
        const ids = [...ring.values()].filter((e) => e.status === 'normal').map((e) => e.id);
        const write = (id: string, status: RingStatus, by = id): void => {
          ring = withEntry(ring, nextEntry(ring, { id, status, by, instance: `i-${id}`, gossip: '' }));
        };
        const change = before.change;
        let commit = false;
        const roll = random.int(6);
        if (roll === 0) write(`x${fresh++}`, 'joining');
        else if (roll === 1 && ids.length > 3) write(random.pick(ids), 'leaving');
        else if (roll === 2 && ids.length > 3) write(random.pick(ids), 'removing', 'a');
        else if (roll === 3 && change !== undefined) {
          commit = true;
          write(change.subject, change.kind === 'join' ? 'normal' : change.kind === 'decommission' ? 'left' : 'removed');
        } else if (roll === 4 && change !== undefined && change.kind !== 'join') write(change.subject, 'normal');
        else continue;
        const after = derivePlacement(ring, options);
        for (let p = 0; p < before.partitionCount; p++) {
          const b = before.sets(p);
          const a = after.sets(p);
          if (commit) expect(new Set(a.old)).toEqual(new Set(b.next));
          else {
            const shared = [a.old, a.next].some((x) => [b.old, b.next].some((y) => x.length === y.length && x.every((id) => y.includes(id))));
            expect(shared, `run ${run} step ${step} partition ${p}`).toBe(true);
          }
        }
      }
    }
  });
});
