// The simulated transport through the shared conformance suite, on virtual
// time: waiting means firing scheduler events (with microtasks flushed in
// between, for async stream handlers), never sleeping.
import { createRandom, Scheduler, SimNetwork } from '@hearsay/sim';
import { createSimTransport, type SimWire } from '../src/testing/sim-transport.ts';
import { transportConformance, type TransportHarness } from './transport-conformance.ts';

/** Let pending promise callbacks run (a macrotask boundary drains the microtask queue). */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function simHarness(): TransportHarness {
  const seed = 42;
  const scheduler = new Scheduler();
  const network = new SimNetwork<SimWire>(scheduler, createRandom(seed), { lossRate: 0, delayMs: 2, jitterMs: 1 });
  let nextHost = 1;

  /** Fire events until `condition()` holds or `timeoutMs` of virtual time passed. */
  const drive = async (condition: () => boolean, timeoutMs: number): Promise<void> => {
    const until = scheduler.now + timeoutMs;
    for (;;) {
      await flush();
      if (condition()) return;
      const next = scheduler.peekTime();
      if (next === undefined || next > until) break;
      scheduler.step();
    }
    await flush();
    if (!condition()) throw new Error(`condition not met within ${timeoutMs} virtual ms (seed ${seed})`);
  };

  return {
    create: async (options = {}) =>
      createSimTransport(network, {
        address: options.address ?? `10.0.0.${nextHost++}:7946`,
        ...(options.maxPacketBytes === undefined ? {} : { maxPacketBytes: options.maxPacketBytes }),
        ...(options.maxFrameBytes === undefined ? {} : { maxFrameBytes: options.maxFrameBytes }),
      }),
    unreachableAddress: async () => '10.9.9.9:7946',
    waitFor: (condition, timeoutMs = 5000) => drive(condition, timeoutMs),
    settle: async (promise) => {
      let settled = false;
      const tracked = promise.finally(() => {
        settled = true;
      });
      tracked.catch(() => {});
      await drive(() => settled, 60_000);
      return tracked;
    },
  };
}

transportConformance('simulated', simHarness);
