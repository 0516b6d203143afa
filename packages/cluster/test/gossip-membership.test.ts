import { describe, expect, it } from 'vitest';
import { connectGossip, GOSSIP_STATE_HTTP, GOSSIP_STATE_KEYS, GOSSIP_STATE_STATUS, type GossipLike } from '../src/gossip-membership.ts';
import { VirtualClock } from './virtual-clock.ts';

type Member = ReturnType<GossipLike['members']>[number];

class FakeGossip implements GossipLike {
  readonly id = 'a';
  readonly local: Record<string, string> = {};
  view: Member[] = [];
  readonly #listeners = new Set<(e: unknown) => void>();
  members(): readonly Member[] {
    return [{ id: 'a', address: 'a:7946', status: 'alive', incarnation: 1, state: { ...this.local } }, ...this.view];
  }
  on(_type: 'event', listener: (event: unknown) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  setLocalState(key: string, value: string): void {
    this.local[key] = value;
    this.emit();
  }
  emit(): void {
    for (const l of this.#listeners) l({});
  }
}

describe('connectGossip', () => {
  it('publishes http, status and key count, and maps gossip members to the view', async () => {
    const g = new FakeGossip();
    const clock = new VirtualClock();
    let keys = 5;
    const view = connectGossip(g, { http: 'http://a:7000', keyCount: () => keys, clock, keysIntervalMs: 1000 });
    expect(g.local).toEqual({ [GOSSIP_STATE_HTTP]: 'http://a:7000', [GOSSIP_STATE_STATUS]: 'starting', [GOSSIP_STATE_KEYS]: '5' });
    view.setStatus('serving');
    expect(g.local[GOSSIP_STATE_STATUS]).toBe('serving');
    keys = 7;
    await clock.advance(1000);
    expect(g.local[GOSSIP_STATE_KEYS]).toBe('7');

    let changes = 0;
    view.onChange(() => changes++);
    g.view = [
      { id: 'b', address: 'b:7946', status: 'suspect', incarnation: 3, state: { http: 'http://b:7000', keys: '12' } },
      { id: 'c', address: 'c:7946', status: 'alive', incarnation: 0, state: { keys: 'junk' } },
    ];
    g.emit();
    expect(changes).toBe(1);
    expect(view.selfId).toBe('a');
    expect(view.members()).toEqual([
      { id: 'a', state: 'alive', http: 'http://a:7000', gossip: 'a:7946', incarnation: 1, keys: 7, status: 'serving' },
      { id: 'b', state: 'suspect', http: 'http://b:7000', gossip: 'b:7946', incarnation: 3, keys: 12 },
      { id: 'c', state: 'alive', http: '', gossip: 'c:7946', incarnation: 0 },
    ]);
    view.close();
    g.emit();
    expect(changes).toBe(1);
  });

  it('shows our own new status and key count at once, though the runtime raises no event for our own state', async () => {
    // The real runtime emits events for other members only; a view cached until the next event kept
    // showing this node as `starting` with 0 keys in `hearsay status`.
    class SilentSelfGossip extends FakeGossip {
      override setLocalState(key: string, value: string): void {
        this.local[key] = value;
      }
    }
    const g = new SilentSelfGossip();
    const clock = new VirtualClock();
    let keys = 0;
    const view = connectGossip(g, { http: 'http://a:7000', keyCount: () => keys, clock, keysIntervalMs: 1000 });
    expect(view.members()[0]).toMatchObject({ status: 'starting', keys: 0 });
    view.setStatus('serving');
    expect(view.members()[0]).toMatchObject({ status: 'serving' });
    keys = 3;
    await clock.advance(1000);
    expect(view.members()[0]).toMatchObject({ keys: 3 });
    view.close();
  });

  it('is not ready while a node with seeds sees no other member alive', () => {
    const g = new FakeGossip();
    const withSeeds = connectGossip(g, { http: 'http://a:7000', expectPeers: true });
    const first = connectGossip(new FakeGossip(), { http: 'http://a:7000' });
    expect(first.ready!()).toBe(true);
    expect(withSeeds.ready!()).toBe(false);
    g.view = [{ id: 'b', address: 'b:7946', status: 'dead', incarnation: 0, state: {} }];
    g.emit();
    expect(withSeeds.ready!()).toBe(false);
    g.view = [{ id: 'b', address: 'b:7946', status: 'alive', incarnation: 1, state: {} }];
    g.emit();
    expect(withSeeds.ready!()).toBe(true);
  });
});
