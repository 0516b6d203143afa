// Five members over real UDP/TCP sockets on 127.0.0.1, in one process: join,
// exchange state, one crashes (sockets closed without leaving) and is declared
// dead, then restarts as itself with a higher generation and is alive again
// everywhere; finally one leaves gracefully and is seen as left. Real time, so conditions are polled with a deadline; the FAST
// tuning keeps the whole test to a few seconds.
import { afterAll, describe, expect, it } from 'vitest';
import type { GossipTuning } from '../src/config.ts';
import { memoryGenerationStore } from '../src/generation-store.ts';
import type { GossipEvent } from '../src/node.ts';
import { startGossip, type GossipRuntime } from '../src/runtime.ts';

const FAST: Partial<GossipTuning> = {
  probeIntervalMs: 100,
  probeTimeoutMs: 40,
  gossipIntervalMs: 40,
  suspicionMult: 3,
  suspicionMaxTimeoutMult: 4,
  pushPullIntervalMs: 400,
  reconnectIntervalMs: 300,
  joinRetryMs: 100,
  joinRetryMaxMs: 400,
  streamTimeoutMs: 1000,
};

async function waitFor(what: string, condition: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function statusOf(runtime: GossipRuntime, id: string): string | undefined {
  return runtime.member(id)?.status;
}

describe('gossip over real sockets', () => {
  const running = new Map<string, GossipRuntime>();
  const stores = new Map<string, ReturnType<typeof memoryGenerationStore>>();
  const events: GossipEvent[] = [];
  const ids = ['m0', 'm1', 'm2', 'm3', 'm4'];

  const start = async (id: string, port: number, seeds: string[]): Promise<GossipRuntime> => {
    let store = stores.get(id);
    if (store === undefined) stores.set(id, (store = memoryGenerationStore()));
    const runtime = await startGossip({ id, host: '127.0.0.1', port, seeds, label: 'real-socket-test', config: FAST, persistence: store });
    runtime.on('event', (e) => events.push(e));
    running.set(id, runtime);
    return runtime;
  };

  afterAll(async () => {
    await Promise.all([...running.values()].map((r) => r.stop({ leave: false })));
  });

  it('joins, spreads state, detects a crash, re-admits the restarted member, sees a graceful leave', async () => {
    const seed = await start('m0', 0, []);
    for (const id of ids.slice(1)) await start(id, 0, [seed.localAddress]);
    for (const [id, r] of running) r.setLocalState('http', `http://${id}.example:7000`);
    const all = (): GossipRuntime[] => [...running.values()];

    await waitFor('every member sees all five alive with their state', () =>
      all().every((r) => ids.every((id) => statusOf(r, id) === 'alive' && r.member(id)?.state['http'] === `http://${id}.example:7000`)),
    );

    // Crash m3: close its sockets without a goodbye.
    const victim = running.get('m3')!;
    const victimAddress = victim.localAddress;
    const oldGeneration = victim.generation;
    await victim.stop({ leave: false });
    running.delete('m3');
    await waitFor('the others declare m3 dead', () => all().every((r) => statusOf(r, 'm3') === 'dead'));
    expect(events.some((e) => e.type === 'dead' && e.member.id === 'm3')).toBe(true);

    // Restart m3 as itself on its old address; its generation rises and the others take it back.
    const port = Number(victimAddress.slice(victimAddress.lastIndexOf(':') + 1));
    const reborn = await start('m3', port, [seed.localAddress]);
    expect(reborn.localAddress).toBe(victimAddress);
    expect(reborn.generation).toBeGreaterThan(oldGeneration);
    reborn.setLocalState('http', 'http://m3.example:7001');
    await waitFor('m3 is alive again everywhere with its new generation and state', () =>
      all().every(
        (r) =>
          statusOf(r, 'm3') === 'alive' &&
          r.member('m3')?.generation === reborn.generation &&
          r.member('m3')?.state['http'] === 'http://m3.example:7001',
      ),
    );
    expect(ids.every((id) => statusOf(reborn, id) === 'alive')).toBe(true);

    // A graceful stop: the others see `left`, not `dead`.
    const leaver = running.get('m4')!;
    await leaver.stop();
    running.delete('m4');
    await waitFor('the others see m4 as left', () => all().every((r) => statusOf(r, 'm4') === 'left'));

    for (const r of all()) {
      const stats = r.stats();
      expect(stats.internalErrors).toBe(0);
      expect(stats.droppedTotal).toBe(0);
      expect(stats.transport.packetsReceived).toBeGreaterThan(0);
    }
  });
});
