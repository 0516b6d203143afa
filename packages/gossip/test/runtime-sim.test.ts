// The runtime on virtual time: the same `startGossip` over the simulated
// transport and clock. Shows what the wire layer promises at cluster level:
// two clusters with different labels never merge, and an encrypted cluster
// rotates its key while running without losing a member.
import { createRandom, Scheduler, seedFromEnv, SimNetwork } from '@hearsay/sim';
import { beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import type { GossipTuning } from '../src/config.ts';
import { memoryGenerationStore } from '../src/generation-store.ts';
import { generateKey, Keyring } from '../src/keyring.ts';
import { startGossip, type GossipRuntime, type GossipRuntimeOptions } from '../src/runtime.ts';
import { createSimTransport, simClock, type SimWire } from '../src/testing/sim-transport.ts';

const SEED = seedFromEnv();
const TUNING: Partial<GossipTuning> = { pushPullIntervalMs: 2000, reconnectIntervalMs: 2000 };

function world() {
  const scheduler = new Scheduler();
  const random = createRandom(SEED);
  const network = new SimNetwork<SimWire>(scheduler, random.fork(), { lossRate: 0, delayMs: 2, jitterMs: 2 });
  let hosts = 0;
  const start = (id: string, options: Partial<GossipRuntimeOptions> & { address?: string } = {}): Promise<GossipRuntime> => {
    const address = options.address ?? `10.0.0.${++hosts}:7946`;
    const rng = random.fork();
    return startGossip({
      id,
      transport: createSimTransport(network, { address }),
      clock: simClock(network, address),
      random: () => rng.next(),
      config: TUNING,
      ...options,
    });
  };
  /** Run virtual time until `condition()` or `timeoutMs`, letting stream exchanges (promises) settle between events. */
  const runUntil = async (what: string, condition: () => boolean, timeoutMs: number): Promise<void> => {
    const until = scheduler.now + timeoutMs;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (condition()) return;
      const next = scheduler.peekTime();
      if (next === undefined || next > until) break;
      scheduler.step();
    }
    if (!condition()) throw new Error(`not within ${timeoutMs} virtual ms: ${what} (seed ${SEED})`);
  };
  const runFor = (ms: number): Promise<void> => runUntil('time passes', () => false, ms).catch(() => undefined);
  /** Await something that needs virtual time to pass (a graceful stop gossips for a while). */
  const settle = async (promise: Promise<void>): Promise<void> => {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    await runUntil('promise settles', () => done, 60_000);
    await tracked;
  };
  return { scheduler, network, start, runUntil, runFor, settle };
}

const ids = (r: GossipRuntime): string[] =>
  r
    .members()
    .filter((m) => m.status === 'alive')
    .map((m) => m.id)
    .sort();

describe('runtime over the simulated transport', () => {
  beforeEach(() => {
    onTestFailed(() => console.error(`runtime-sim failed with seed ${SEED} (rerun with HEARSAY_SEED=${SEED})`));
  });

  it('keeps two clusters with different labels apart on one network, counting the other cluster as wrong-label', async () => {
    const w = world();
    const a1 = await w.start('a1', { label: 'blue' });
    const a2 = await w.start('a2', { label: 'blue', seeds: [a1.localAddress] });
    // b1 is (mis)configured to join through a blue member.
    const b1 = await w.start('b1', { label: 'green', seeds: [a1.localAddress] });
    const b2 = await w.start('b2', { label: 'green', seeds: [b1.localAddress] });
    await w.runUntil('blue members see each other', () => ids(a1).length === 2 && ids(a2).length === 2, 10_000);
    await w.runFor(10_000);
    expect(ids(a1)).toEqual(['a1', 'a2']);
    expect(ids(a2)).toEqual(['a1', 'a2']);
    expect(ids(b1)).toEqual(['b1', 'b2']);
    expect(ids(b2)).toEqual(['b1', 'b2']);
    expect(a1.stats().drops['wrong-label']).toBeGreaterThan(0);
    for (const r of [a1, a2, b1, b2]) await r.stop({ leave: false });
  });

  it('rotates the cluster key while running: add, use, remove; a member with a foreign key never gets in', async () => {
    const w = world();
    const oldKey = generateKey();
    const newKey = generateKey();
    const rings = [new Keyring([oldKey]), new Keyring([oldKey]), new Keyring([oldKey])];
    const m1 = await w.start('m1', { keyring: rings[0]! });
    const m2 = await w.start('m2', { keyring: rings[1]!, seeds: [m1.localAddress] });
    const m3 = await w.start('m3', { keyring: rings[2]!, seeds: [m1.localAddress] });
    const intruder = await w.start('m9', { keyring: new Keyring([generateKey()]), seeds: [m1.localAddress] });
    const cluster = [m1, m2, m3];
    const converged = (): boolean => cluster.every((r) => ids(r).join() === 'm1,m2,m3');
    await w.runUntil('the three keyed members converge', converged, 10_000);

    let round = 0;
    const spreads = async (step: string): Promise<void> => {
      round++;
      m2.setLocalState('round', String(round));
      await w.runUntil(`state spreads after ${step}`, () => cluster.every((r) => r.member('m2')?.state['round'] === String(round)), 10_000);
      expect(converged()).toBe(true);
    };
    // Members take each step one after another, with gossip in between, as an operator would.
    for (const ring of rings) {
      ring.addKey(newKey);
      await w.runFor(300);
    }
    await spreads('adding the new key');
    for (const ring of rings) {
      ring.useKey(newKey);
      await w.runFor(300);
    }
    await spreads('promoting the new key');
    for (const ring of rings) {
      ring.removeKey(oldKey);
      await w.runFor(300);
    }
    await spreads('removing the old key');

    expect(ids(intruder)).toEqual(['m9']);
    expect(m1.stats().drops.undecryptable).toBeGreaterThan(0);
    for (const r of cluster) {
      expect(r.member('m9')).toBeUndefined();
      expect(r.stats().internalErrors).toBe(0);
    }
    for (const r of [...cluster, intruder]) await r.stop({ leave: false });
  });

  it('turns encryption on in a running cluster: rolling restart into a keyring, then seal, then strict', async () => {
    const w = world();
    const key = generateKey();
    const cluster: GossipRuntime[] = [await w.start('m1')];
    for (const id of ['m2', 'm3']) cluster.push(await w.start(id, { seeds: [cluster[0]!.localAddress] }));
    const allAlive = (): boolean => cluster.every((r) => ids(r).join() === 'm1,m2,m3');
    await w.runUntil('plaintext cluster converges', allAlive, 10_000);

    // Step 1: restart members one at a time with the keyring, still speaking plaintext and accepting both.
    for (let i = 0; i < cluster.length; i++) {
      const old = cluster[i]!;
      const address = old.localAddress;
      await w.settle(old.stop());
      cluster[i] = await w.start(old.id, {
        address,
        seeds: [cluster[(i + 1) % cluster.length]!.localAddress],
        keyring: new Keyring([key]),
        encryption: { encryptOutgoing: false, acceptPlaintext: true },
      });
      await w.runUntil(`${old.id} back after its restart`, allAlive, 10_000);
    }
    // Step 2: seal outgoing, one member at a time; step 3: refuse plaintext.
    for (const step of [{ encryptOutgoing: true }, { acceptPlaintext: false }]) {
      for (const r of cluster) {
        r.setEncryptionPolicy(step);
        await w.runFor(200);
      }
    }
    cluster[1]!.setLocalState('sealed', 'yes');
    await w.runUntil('state spreads once strict', () => cluster.every((r) => r.member('m2')?.state['sealed'] === 'yes' && allAlive()), 10_000);
    expect(cluster.every((r) => r.stats().drops['encryption-mismatch'] === 0)).toBe(true);
    // A plaintext member can no longer get in.
    const outsider = await w.start('m9', { seeds: [cluster[0]!.localAddress] });
    await w.runFor(3000);
    expect(ids(outsider)).toEqual(['m9']);
    expect(cluster[0]!.stats().drops['encryption-mismatch']).toBeGreaterThan(0);
    for (const r of [...cluster, outsider]) await r.stop({ leave: false });
  });

  it('exposes clock offsets of the members it probed, from the wall clock it was given, and in stats', async () => {
    const w = world();
    const wall = (offsetMs: number) => () => 1_767_225_600_000 + w.scheduler.now + offsetMs;
    const a = await w.start('a', { wallClock: wall(0) });
    const b = await w.start('b', { seeds: [a.localAddress], wallClock: wall(800) });
    const c = await w.start('c', { seeds: [a.localAddress], wallClock: wall(-250) });
    await w.runUntil('a has measured b and c', () => a.clockOffsets().size === 2, 30_000);
    const offsets = a.clockOffsets();
    for (const [id, truth] of [['b', 800], ['c', -250]] as const) {
      const est = offsets.get(id)!;
      expect(Math.abs(est.offsetMs - truth)).toBeLessThanOrEqual(est.errorMs);
      expect(est.errorMs).toBeLessThanOrEqual(2 * (2 + 2) / 2 + 1);
    }
    expect(a.stats().clockOffsets).toEqual(Object.fromEntries(offsets));
    await w.runUntil('b has measured a', () => b.clockOffsets().has('a'), 30_000);
    expect(Math.abs(b.clockOffsets().get('a')!.offsetMs + 800)).toBeLessThanOrEqual(b.clockOffsets().get('a')!.errorMs);
    void c;
  });

  it('broadcasts a user event to every member through the codec, once each, and refuses use after stop', async () => {
    const w = world();
    const a = await w.start('a');
    const b = await w.start('b', { seeds: [a.localAddress] });
    const c = await w.start('c', { seeds: [a.localAddress] });
    await w.runUntil('all joined', () => [a, b, c].every((r) => ids(r).length === 3), 10_000);
    const got = new Map<string, string[]>();
    for (const r of [a, b, c]) r.onUserEvent((e) => got.set(r.id, [...(got.get(r.id) ?? []), `${e.origin}:${e.name}:${[...e.payload].join(',')}`]));
    const off = c.onUserEvent(() => {
      throw new Error('listener bug');
    });
    b.broadcastEvent('deploy', new Uint8Array([1, 2, 3]));
    await w.runUntil('everyone has it', () => [a, b, c].every((r) => got.get(r.id)?.length === 1), 10_000);
    await w.runFor(5000);
    for (const r of [a, b, c]) expect(got.get(r.id)).toEqual(['b:deploy:1,2,3']);
    expect(c.stats().internalErrors).toBe(1);
    off();
    await w.settle(b.stop());
    expect(() => b.broadcastEvent('late', new Uint8Array(0))).toThrowError(expect.objectContaining({ code: 'GOSSIP_RUNTIME_STOPPED' }));
  });

  it('keeps running when a listener throws, unsubscribes, persists the generation, and refuses use after stop', async () => {
    const w = world();
    const store = memoryGenerationStore(41);
    const errors: string[] = [];
    const logger = { warn: () => {}, error: (message: string) => errors.push(message) };
    const a = await w.start('a1', { persistence: store, logger });
    expect(a.generation).toBe(Math.max(42, w.scheduler.now));
    expect(store.value).toBe(a.generation);
    const seen: string[] = [];
    a.on('join', () => {
      throw new Error('listener bug');
    });
    const unsubscribe = a.on('event', (e) => seen.push(`${e.type}:${e.member.id}`));
    const b = await w.start('b2', { seeds: [a.localAddress] });
    await w.runUntil('a sees b', () => a.member('b2')?.status === 'alive', 10_000);
    expect(seen).toContain('join:b2');
    expect(a.stats().internalErrors).toBe(1);
    expect(errors).toEqual(['gossip: event listener threw']);
    unsubscribe();
    b.setLocalState('k', 'v');
    await w.runUntil('a sees b state', () => a.member('b2')?.state['k'] === 'v', 10_000);
    expect(seen.some((e) => e.startsWith('update'))).toBe(false);

    await a.stop({ leave: false });
    await a.stop({ leave: false });
    expect(() => a.setLocalState('k', 'v')).toThrow(expect.objectContaining({ code: 'GOSSIP_RUNTIME_STOPPED' }));
    await b.stop({ leave: false });
  });
});
